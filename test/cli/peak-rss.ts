// Preloaded into a CLI child (`--import`) so a test can read the child's peak resident memory.
process.on('exit', () => {
  process.stderr.write(`peak-rss-kib ${process.resourceUsage().maxRSS}\n`);
});
