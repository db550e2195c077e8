/**
 * Content types by extension, for downloads. Anything that a browser would
 * run or render as a document of this origin (HTML, SVG, XML) is served as
 * a download (`attachment`) and under a sandboxing CSP anyway.
 */

const TYPES: Record<string, string> = {
  txt: "text/plain; charset=utf-8",
  md: "text/markdown; charset=utf-8",
  csv: "text/csv; charset=utf-8",
  log: "text/plain; charset=utf-8",
  json: "application/json",
  pdf: "application/pdf",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  mp3: "audio/mpeg",
  mp4: "video/mp4",
  webm: "video/webm",
  zip: "application/zip",
  gz: "application/gzip",
  tgz: "application/gzip",
  tar: "application/x-tar",
  iso: "application/x-iso9660-image",
  pcap: "application/vnd.tcpdump.pcap",
  html: "text/html; charset=utf-8",
  htm: "text/html; charset=utf-8",
  svg: "image/svg+xml",
  xml: "application/xml",
  js: "text/javascript",
  css: "text/css",
};

/** Types that would act as a page of this origin if shown inline. */
const ACTIVE = /^(text\/html|image\/svg|application\/xml|text\/javascript|text\/css)/;

/** The content type for a file name, and whether it must be downloaded rather than shown. */
export function contentType(name: string): { type: string; download: boolean } {
  const dot = name.lastIndexOf(".");
  const ext = dot < 0 ? "" : name.slice(dot + 1).toLowerCase();
  const type = TYPES[ext] ?? "application/octet-stream";
  return { type, download: ACTIVE.test(type) || type === "application/octet-stream" };
}
