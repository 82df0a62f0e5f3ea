/**
 * onnxruntime intra-op threads for every run whose outputs decide what ships or what the ledger reports
 * as quality: evaluation, calibration scores, captures for reconstruction and BatchNorm statistics,
 * distillation, temperature, sensitivity curves, quantization calibration. A kernel may split a reduction
 * differently with another thread count, and a last-bit difference can flip a kept stage or an argmax,
 * so quality work never follows the machine's core count or `latency.threads` (latency may use any).
 */
export const QUALITY_THREADS = 1;
