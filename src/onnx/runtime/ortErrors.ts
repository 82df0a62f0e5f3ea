/**
 * onnxruntime's load errors carry C++ source paths and function signatures; a CI log needs the op or
 * opset that failed, in one line.
 */
const PATTERNS: [RegExp, (m: RegExpMatchArray) => string][] = [
  [/No Op registered for (\S+) with domain_version of (\d+)/, (m) => `op '${m[1]}' is not an operator onnxruntime knows at opset ${m[2]}; replace it with standard ONNX ops or re-export`],
  [/(\S+?):(\S+?)\(-?\d+\) is not a registered function\/op/, (m) => `op '${m[2]}' of domain '${m[1]}' is not registered in onnxruntime; export the model with standard ONNX ops`],
  [/Current official support for domain (\S+) is till opset (\d+)/, (m) => `the model's ${m[1]} opset is newer than onnxruntime supports (up to ${m[2]}); re-export with opset ${m[2]} or lower`],
  [/Could not find an implementation for (\S+)\((\d+)\) node with name '([^']*)'/, (m) => `onnxruntime has no CPU kernel for op '${m[1]}' (opset ${m[2]}, node '${m[3]}') with these input types; re-export with supported types`],
];

const MAX_LENGTH = 300;

export function shortOrtError(message: string): string {
  for (const [re, say] of PATTERNS) {
    const m = message.match(re);
    if (m) return say(m);
  }
  const line = message
    .split('\n')[0]
    .replace(/^Load model from .*? failed:\s*/, '')
    .replace(/\/onnxruntime_src\/\S+:\d+ [^)]*\)\s*/g, '')
    .trim();
  return line.length > MAX_LENGTH ? `${line.slice(0, MAX_LENGTH - 1)}…` : line;
}
