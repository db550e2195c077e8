/**
 * lib/bytes/: where bytes come from and go to, and how they are moved in
 * large chunks: sources and sinks (files, pipes, memory), the chunked reader
 * and writer with their read-ahead and write-behind, `writeAll`, `concat`, `concatAll`,
 * line reading, and one `errorMessage`. Knows nothing of sockets or
 * protocols; imports nothing else under lib/.
 */

export * from "./chunked.ts";
export * from "./lines.ts";
export * from "./source_sink.ts";
