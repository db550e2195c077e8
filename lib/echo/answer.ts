/** What the echo servers answer to one message, over TCP and UDP alike. */

export type EchoMode = "echo" | "upper" | "ceil" | "broadcast";

const NUMBER = /^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$/;

/** The answer to one message in the echo, upper and ceil modes. */
export function answer(mode: Exclude<EchoMode, "broadcast">, message: string): string {
  if (mode === "upper") return message.toUpperCase();
  if (mode === "ceil") {
    if (!NUMBER.test(message)) return `error: not a number: ${JSON.stringify(message)}`;
    const value = Math.ceil(Number(message));
    return Number.isFinite(value)
      ? String(Object.is(value, -0) ? 0 : value)
      : `error: out of range: ${message.trim()}`;
  }
  return message;
}
