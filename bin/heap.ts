/**
 * The agent's V8 heap beside the job.
 *
 * Start-up allocates a lot that lives briefly (the bundle's initialisation, the SDK clients,
 * the download), and V8 answers by growing the young generation from 1 MB to 16 MB semi-spaces,
 * which then stays for the job's whole life. `holdYoungGeneration` keeps it at 1 MB from the
 * start of `run` until run.sh runs; `releaseYoungGeneration` then gives V8 its default back, so
 * that a log flood works with the larger young generation (held through a flood: 14 % more CPU
 * for 23 MB less peak). V8 reads the growth factor each time it grows the young generation.
 * Measured (bench/startup.ts, binary, 3 rounds): VmRSS 71.7 MB 30 s into a job with the hold,
 * 78.2 MB without (RssAnon 24.7 both), start-up to downloading 479 against 529 ms; but a fresh
 * clone's build with the hold read 78.8 MB, so the difference may be the build's, not the hold's.
 * Not earlier: held from the bundle's first line it cut the lifecycle's peak (135 to 123 MB) but
 * cost ~40 ms of start-up, and a flag that differs from its default makes every Node built-in
 * loaded afterwards compile without its code cache (twice as slow): by `run`, they are loaded.
 *
 * Then one garbage collection a few seconds into the job. By then the agent's start-up (the
 * bundle's initialisation, the SDK clients, the download's buffers) is garbage, and V8 still
 * holds the young generation it grew to for that start-up (16 MB semi-spaces). V8 shrinks it
 * at a collection that finds the allocation rate low, which an idle agent reaches only when its
 * slow allocation fills the young generation, 10 to 60 s in or later (bench/startup.ts: RssAnon
 * 40 MB, 25 MB after it, at a random point). `HEAP_REDUCTION_DELAY_MS` after run.sh started,
 * past V8's 5 s window of allocation rate, the collection is made to happen then.
 *
 * V8's `gc()` is reached without `--expose-gc` on the command line: a flag on the command line
 * (NODE_OPTIONS) would make V8 reject the binary's code cache, built without it; set at run time,
 * after the code cache was used, it only adds `gc` to the context made then, and is unset again.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Gc = () => void;

export const HEAP_REDUCTION_DELAY_MS = 6_000;
/** V8's default `--semi-space-growth-factor` (node --v8-options). */
const DEFAULT_GROWTH_FACTOR = 2;

export function holdYoungGeneration(): void {
  setFlagsFromString('--semi-space-growth-factor=1');
}

export function releaseYoungGeneration(): void {
  setFlagsFromString(`--semi-space-growth-factor=${DEFAULT_GROWTH_FACTOR}`);
}

let scheduled = false;

/** Collect once, `delayMs` from now, once per process (later calls do nothing); the timer never keeps the agent alive. */
export function scheduleHeapReduction(delayMs = HEAP_REDUCTION_DELAY_MS): void {
  if (scheduled) return;
  scheduled = true;
  setTimeout(collect, delayMs).unref();
}

let gc: Gc | undefined;

/**
 * A full garbage collection now; also the log shipper's, after a flood through its spill file
 * (LogShipperOptions.reclaim). `gc` is looked up once and kept.
 */
export function collect(): void {
  try {
    if (gc === undefined) {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as Gc;
      // Back to the defaults: a built-in loaded later (the termination's) keeps its code cache.
      setFlagsFromString('--no-expose-gc');
    }
    // No options: a full collection. With `{ type: 'major' }` this V8 ran a scavenge only.
    gc();
  } catch {
    // only memory is at stake
  }
}
