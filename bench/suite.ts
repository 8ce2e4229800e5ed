/** The shape every benchmark suite in bench/ exports as `suite`. */
export interface Figure {
  /** flat key in bench/results.json, e.g. "decide_events_per_s" */
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  /** how it was measured, in a few words */
  readonly note?: string;
}

export interface BenchSuite {
  readonly title: string;
  run(): Promise<Figure[]>;
}
