/**
 * Timers for deadlines, without Deno's global timers: since Deno 2.8
 * `setTimeout`, `clearTimeout` and `setInterval` are node:timers', loaded (with
 * node's errors, inspect and validators) the first time a program so much as
 * reads one of them: 11 to 17 ms of a client's start-up here
 * (docs/PERFORMANCE.md, "The global timers"). `AbortSignal.timeout` runs on the
 * web platform's own timers, loaded already; but a signal cannot be cancelled
 * and costs about 1.9 KB until it fires, so fsd's timers wait in one queue (a
 * min-heap; a cancelled timer leaves it at once) and a signal is made only for
 * a timer due before every signal not yet fired. Each new signal's delay is
 * then shorter than every pending one's, so no more are pending than there are
 * distinct delays in use. As with setTimeout, a waiting timer keeps the
 * process alive; a cancelled one does not. fsd's every timer is one of these
 * but the two that must not keep a process alive (the accept watchdog's probe,
 * the pcap writer's flush: `Deno.unrefTimer`); tests/cli/timer_test.ts holds it.
 */

/** A timer from `after`; `cancel` is idempotent and safe after it ran. */
export interface Timer {
  cancel(): void;
}

class Entry implements Timer {
  index = -1;
  constructor(readonly due: number, readonly seq: number, readonly run: () => void) {}
  cancel(): void {
    if (this.index < 0) return;
    remove(this.index);
    if (heap.length === 0) arm(); // lets go of the signals: nothing waits
  }
}

const heap: Entry[] = [];
let seq = 0;

/**
 * A signal of ours not yet fired. While a timer waits each has `fire` as its
 * listener, which keeps the process alive as a pending setTimeout does; when
 * none waits they are let go of (no listener: Deno then lets the process end)
 * but kept, to be taken up again by the next timer due no earlier.
 */
interface Pending {
  due: number;
  signal: AbortSignal;
  listener: () => void;
  attached: boolean;
}
const signals: Pending[] = [];
/** Signals made so far (tests/cli/timer_test.ts). */
let made = 0;

/**
 * The longest delay a signal is given: `AbortSignal.timeout` (as setTimeout)
 * fires at once for 2^31 ms or more, so a longer timer waits in steps.
 */
const MAX_DELAY = 2 ** 31 - 1;

/** Runs `run` once, `ms` milliseconds from now (NaN: 0), unless cancelled first. */
export function after(ms: number, run: () => void): Timer {
  const entry = new Entry(performance.now() + Math.max(0, ms || 0), seq++, run);
  entry.index = heap.length;
  heap.push(entry);
  up(entry.index);
  arm();
  return entry;
}

/** Resolves `ms` milliseconds from now (a timer's turn of the event loop for 0). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => after(ms, resolve));
}

/**
 * `pending`'s result, or `late` if it takes longer than `ms`; the timer is
 * cancelled either way, and a rejection passes through.
 */
export async function orAfter<T, L>(pending: Promise<T>, ms: number, late: L): Promise<T | L> {
  let timer: Timer | undefined;
  const timeout = new Promise<L>((resolve) => timer = after(ms, () => resolve(late)));
  try {
    return await Promise.race([pending, timeout]);
  } finally {
    timer?.cancel();
  }
}

/** Runs `run` every `ms` milliseconds (each `ms` after the last run ended) until cancelled, even from `run`. */
export function every(ms: number, run: () => void): Timer {
  let cancelled = false;
  const tick = () => {
    try {
      run();
    } finally {
      if (!cancelled) current = after(ms, tick); // a run that throws does not stop it, as with setInterval
    }
  };
  let current = after(ms, tick);
  return {
    cancel() {
      cancelled = true;
      current.cancel();
    },
  };
}

/**
 * A deadline that moves often: an idle timeout pushed on by every chunk, a
 * wait's deadline set by every receive. Moving it later is an assignment; its
 * one timer, firing before the deadline, arms itself again for what is left,
 * and only a deadline earlier than the timer's makes a new timer at once. So a
 * chunk or a datagram costs a clock reading, not a timer set and cancelled.
 */
export class Deadline {
  #at = Infinity;
  #timer: Timer | undefined;
  #timerAt = Infinity;
  #stopped = false;

  /** `onDue` runs once each time the deadline passes while it is set. */
  constructor(readonly onDue: () => void) {}

  /** Due at `at` (performance.now()'s clock), replacing the last deadline; no-op once stopped. */
  set(at: number): void {
    if (this.#stopped) return;
    this.#at = at;
    if (at < this.#timerAt) this.#arm(at);
  }

  /** Due `ms` from now. */
  in(ms: number): void {
    this.set(performance.now() + ms);
  }

  /** Not due (until set again); a timer still armed lapses harmlessly. */
  clear(): void {
    this.#at = Infinity;
  }

  /** Never due again: the timer is cancelled, and `set` does nothing. */
  stop(): void {
    this.#stopped = true;
    this.#at = Infinity;
    this.#timer?.cancel();
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #arm(at: number): void {
    this.#timer?.cancel();
    this.#timerAt = at;
    this.#timer = after(at - performance.now(), this.#ring);
  }

  #ring = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (this.#at === Infinity) return; // cleared: the next set arms it again
    if (performance.now() < this.#at) return this.#arm(this.#at);
    this.#at = Infinity;
    this.onDue();
  };
}

/** How many timers wait, how many of our signals have not fired yet, and how many were ever made (tests/cli/timer_test.ts). */
export function timerCounts(): { timers: number; signals: number; made: number } {
  const unfired = signals.filter((pending) => pending.attached || !pending.signal.aborted);
  return { timers: heap.length, signals: unfired.length, made };
}

/**
 * Holds on to the signals while a timer waits (and lets go of them when none
 * does), and makes a signal for the earliest timer unless one fires no later.
 */
function arm(): void {
  const top = heap[0];
  let earliest = Infinity;
  for (let i = signals.length - 1; i >= 0; i--) {
    const pending = signals[i];
    if (!pending.attached && pending.signal.aborted) {
      signals.splice(i, 1); // fired while nothing waited
    } else if (!top) {
      if (pending.attached) pending.signal.removeEventListener("abort", pending.listener);
      pending.attached = false;
    } else {
      if (!pending.attached) pending.signal.addEventListener("abort", pending.listener);
      pending.attached = true;
      earliest = Math.min(earliest, pending.due);
    }
  }
  if (!top || earliest <= top.due) return;
  // Whole milliseconds, rounded up: the signal fires at `due` or after it, never before; a timer
  // further off than MAX_DELAY gets a signal at MAX_DELAY, which arms the next step when it fires.
  const now = performance.now();
  const delay = Math.min(MAX_DELAY, Math.max(0, Math.ceil(top.due - now)));
  const signal = AbortSignal.timeout(delay);
  made++;
  const due = Math.min(top.due, now + delay);
  const pending: Pending = { due, signal, listener: () => fire(pending), attached: true };
  signal.addEventListener("abort", pending.listener);
  signals.push(pending);
}

function fire(pending: Pending): void {
  const index = signals.indexOf(pending);
  if (index >= 0) signals.splice(index, 1);
  const now = performance.now();
  while (heap.length > 0 && heap[0].due <= now) {
    const entry = heap[0];
    remove(0);
    try {
      entry.run();
    } catch (error) {
      queueMicrotask(() => {
        throw error; // as an uncaught error from setTimeout's callback
      });
    }
  }
  arm();
}

const before = (a: Entry, b: Entry) => a.due < b.due || (a.due === b.due && a.seq < b.seq);

function place(entry: Entry, index: number): void {
  heap[index] = entry;
  entry.index = index;
}

function up(index: number): void {
  const entry = heap[index];
  while (index > 0) {
    const parent = (index - 1) >> 1;
    if (!before(entry, heap[parent])) break;
    place(heap[parent], index);
    index = parent;
  }
  place(entry, index);
}

function down(index: number): void {
  const entry = heap[index];
  for (;;) {
    let child = 2 * index + 1;
    if (child >= heap.length) break;
    if (child + 1 < heap.length && before(heap[child + 1], heap[child])) child++;
    if (!before(heap[child], entry)) break;
    place(heap[child], index);
    index = child;
  }
  place(entry, index);
}

function remove(index: number): void {
  const gone = heap[index];
  const last = heap.pop()!;
  gone.index = -1;
  if (last === gone) return;
  place(last, index);
  up(index);
  down(last.index);
}
