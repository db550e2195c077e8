/**
 * lib/store/: the served directory and its rules, written once for every
 * protocol. The error-code table (TFTP's), the path rules (`Sandbox`,
 * `parseName`), staging (write under a hidden name, sync, publish with
 * link(2), never replace), listings, the file store that puts them
 * together (`FileStore`), and the typed events a file service logs.
 * Imports lib/bytes/ and lib/net/ only.
 */

export * from "./errors.ts";
export * from "./file_store.ts";
export * from "./listing.ts";
export * from "./log.ts";
export * from "./sandbox.ts";
export * from "./staging.ts";
export * from "./shared_dir.ts";
