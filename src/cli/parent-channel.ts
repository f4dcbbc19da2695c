// Messages from the parent that started this process (`run` starting the engine), over Node's
// IPC channel. Kept from the start, in order: one that arrives while the engine is still
// loading (the listener, after the bound secrets) would be dropped with no listener for it.

interface Received {
  readonly message: unknown;
  readonly handle: unknown;
}

export class ParentChannel {
  private readonly received: Received[] = [];
  private wake: (() => void) | undefined;
  private gone = false;

  constructor() {
    process.on('message', (message: unknown, handle: unknown) => {
      this.received.push({ message, handle });
      this.wake?.();
    });
    process.once('disconnect', () => {
      this.gone = true;
      this.wake?.();
    });
  }

  /** The next message, which must be of `type` (`what` names it in errors). */
  next(type: string, what: string): Promise<{ message: Record<string, unknown>; handle: unknown }> {
    return new Promise((resolve, reject) => {
      const take = (): void => {
        const first = this.received.shift();
        if (first === undefined) {
          if (this.gone) reject(new Error(`the parent went away before passing ${what}`));
          else this.wake = take;
          return;
        }
        this.wake = undefined;
        const { message, handle } = first;
        if (
          typeof message === 'object' &&
          message !== null &&
          'type' in message &&
          message.type === type
        )
          resolve({ message: message as Record<string, unknown>, handle });
        else reject(new Error(`the parent passed something other than ${what}`));
      };
      take();
    });
  }
}
