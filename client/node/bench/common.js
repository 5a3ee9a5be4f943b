'use strict';
// Shared by the benchmarks: argument parsing, percentiles, the JSON line.

function args(defaults) {
  const out = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i]);
    if (!m) continue;
    const key = m[1].replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    const val = m[2] !== undefined ? m[2] : argv[++i];
    out[key] = typeof defaults[key] === 'number' ? Number(val) : val;
  }
  return out;
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, i)] * 10) / 10;
}

/** One result line: {"system","workload","size_bytes","msgs_per_s","mb_per_s","p50_us","p99_us","p999_us"}. */
function report(system, workload, size, count, seconds, latenciesUs) {
  const sorted = latenciesUs ? Float64Array.from(latenciesUs).sort() : null;
  const mps = count / seconds;
  console.log(JSON.stringify({
    system,
    workload,
    size_bytes: size,
    msgs_per_s: Math.round(mps),
    mb_per_s: Math.round((mps * size) / 1e6 * 100) / 100,
    p50_us: sorted ? pct(sorted, 50) : null,
    p99_us: sorted ? pct(sorted, 99) : null,
    p999_us: sorted ? pct(sorted, 99.9) : null,
  }));
}

module.exports = { args, report };
