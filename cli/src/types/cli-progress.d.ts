/** The part of cli-progress 3.x Settle uses (the package ships no types and @types/cli-progress is not installed). */
declare module 'cli-progress' {
  export interface Options {
    format?: string;
    stream?: NodeJS.WritableStream;
    noTTYOutput?: boolean;
    notTTYSchedule?: number;
    etaBuffer?: number;
    fps?: number;
    hideCursor?: boolean;
    clearOnComplete?: boolean;
    stopOnComplete?: boolean;
  }
  export interface Preset {
    barCompleteChar: string;
    barIncompleteChar: string;
  }
  export class SingleBar {
    constructor(options: Options, preset?: Preset);
    start(total: number, startValue: number, payload?: Record<string, unknown>): void;
    update(value: number, payload?: Record<string, unknown>): void;
    setTotal(total: number): void;
    stop(): void;
  }
  export const Presets: { shades_classic: Preset; shades_grey: Preset; legacy: Preset; rect: Preset };
  const cliProgress: { SingleBar: typeof SingleBar; Presets: typeof Presets };
  export default cliProgress;
}
