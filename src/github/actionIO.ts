/** The runner-facing side effects (@actions/core in the action), kept out so `run` can be driven by tests. */
export interface ActionIO {
  info(message: string): void;
  warning(message: string): void;
  setOutput(name: string, value: string): void;
  setFailed(message: string): void;
  writeSummary(markdown: string): Promise<void>;
}
