/**
 * The command line split into flags and positionals, strictly: node:util's
 * `parseArgs` rules (`--name value`, `--name=value`, `-n value`, `-nvalue`,
 * `-abc` for switches, `--` ends the flags, the same error messages), without
 * node:util, whose import loads more of Deno's Node compatibility layer at
 * start-up (docs/PERFORMANCE.md, "Issue 20, session 33").
 * tests/cli/argv_test.ts holds it to `parseArgs` on a corpus of command lines.
 */

export interface ArgOption {
  type: "boolean" | "string";
  short?: string;
  multiple?: boolean;
}

export interface ParsedArgv {
  values: Record<string, string | boolean | (string | boolean)[]>;
  positionals: string[];
}

/** Throws an Error with node's message (its first sentence is what users see). */
export function parseArgv(args: readonly string[], options: Record<string, ArgOption>): ParsedArgv {
  const values: ParsedArgv["values"] = {};
  const positionals: string[] = [];
  const longFor = (short: string) =>
    Object.keys(options).find((name) => options[name].short === short) ?? short;
  const isString = (name: string) =>
    Object.hasOwn(options, name) && options[name].type === "string";
  const take = (name: string, rawName: string, value: string | undefined, inline: boolean) => {
    if (!Object.hasOwn(options, name)) {
      throw new Error(
        `Unknown option '${rawName}'. To specify a positional argument starting with a '-', ` +
          `place it at the end of the command after '--', as in '-- ${JSON.stringify(rawName)}`,
      );
    }
    const option = options[name];
    const label = `${option.short ? `-${option.short}, ` : ""}--${name}`;
    if (option.type === "string" && value === undefined) {
      throw new Error(`Option '${label} <value>' argument missing`);
    }
    if (option.type === "boolean" && value !== undefined) {
      throw new Error(`Option '${label}' does not take an argument`);
    }
    if (!inline && value !== undefined && value.length > 1 && value[0] === "-") {
      const example = rawName.startsWith("--")
        ? `'${rawName}=-XYZ'`
        : `'--${name}=-XYZ' or '${rawName}-XYZ'`;
      throw new Error(
        `Option '${rawName}' argument is ambiguous.\nDid you forget to specify the option ` +
          `argument for '${rawName}'?\nTo specify an option argument starting with a dash use ${example}.`,
      );
    }
    const got = value ?? true;
    if (!option.multiple) values[name] = got;
    else ((values[name] ??= []) as (string | boolean)[]).push(got);
  };
  const queue = [...args];
  while (queue.length > 0) {
    const arg = queue.shift()!;
    if (arg === "--") {
      positionals.push(...queue);
      break;
    }
    if (arg.length < 2 || arg[0] !== "-") {
      positionals.push(arg);
    } else if (arg[1] !== "-") {
      const name = longFor(arg[1]);
      if (arg.length === 2) {
        take(name, arg, isString(name) ? queue.shift() : undefined, false);
      } else if (isString(name)) {
        take(name, `-${arg[1]}`, arg.slice(2), true);
      } else {
        // -abc: switches one by one; a flag with a value ends the group and takes the rest.
        const expanded: string[] = [];
        for (let i = 1; i < arg.length; i++) {
          const last = i === arg.length - 1;
          if (!isString(longFor(arg[i])) || last) expanded.push(`-${arg[i]}`);
          else {
            expanded.push(`-${arg[i]}${arg.slice(i + 1)}`);
            break;
          }
        }
        queue.unshift(...expanded);
      }
    } else {
      const equals = arg.indexOf("=", 3); // `--=x` is a flag named "=x", as in node
      if (equals === -1) {
        const name = arg.slice(2);
        take(name, arg, isString(name) ? queue.shift() : undefined, false);
      } else {
        const name = arg.slice(2, equals);
        take(name, `--${name}`, arg.slice(equals + 1), true);
      }
    }
  }
  return { values, positionals };
}
