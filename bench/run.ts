// Benchmarks (DESIGN §10) measure the engine against the direct path. The engine has not
// landed, so there is nothing to measure yet; this says so instead of printing numbers.
console.log(
  'npm run bench: no benchmarks yet: the enforcing proxy engine has not landed in this version.',
);
