/**
 * The names of --trace's modes, apart from the tracers themselves: a command
 * checks its flags with these and loads the tracers only when it traces.
 */

export const TRACE_MODES = ["fsd", "hex", "text", "ladder", "none"] as const;
export type TraceMode = typeof TRACE_MODES[number];

/** Whether `text` names a trace mode. */
export function isTraceMode(text: string): text is TraceMode {
  return (TRACE_MODES as readonly string[]).includes(text);
}
