// Text cut short for a quote or a display, never between the two halves of a surrogate pair:
// half a character is written out as U+FFFD, so a file made from the cut text would differ
// from the same file remade from the whole one.

/** At most `max` UTF-16 units of `text`, one fewer where the cut would split a character. */
export function cutAt(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

/** `text`, or its first `max` units and an ellipsis when it is longer. */
export function shortened(text: string, max: number): string {
  return text.length > max ? `${cutAt(text, max)}…` : text;
}
