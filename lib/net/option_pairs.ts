/**
 * Option pairs, in every protocol that has options (fsd/1's OPT and OACK,
 * TFTP's RRQ/WRQ options and OACK): the name/value strings as they are on
 * the wire, in order, names in lower case, a repeated name kept (TFTP
 * refuses a repeat, fsd/1 lets the last value count): one meaning, one
 * shape.
 */
export type OptionPairs = [name: string, value: string][];

/** The pairs by name, a repeated name's last value counting (fsd/1's reading). */
export function optionRecord(pairs: OptionPairs): Record<string, string> {
  return Object.fromEntries(pairs);
}
