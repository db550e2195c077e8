/** fsd's version; deno.json says the same (a test checks). */
export const VERSION = "0.1.0";
