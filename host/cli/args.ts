/** Argument parsers shared by the CLI's commands. */
import { InvalidArgumentError } from 'commander';

/** Parses an option value that must be a decimal integer ≥ `min` (a safe integer); the error names the option. */
export function integerArg(what: string, min: number): (value: string) => number {
  return (value) => {
    if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`${what} must be an integer`);
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${what} must be an integer >= ${min}`);
    return n;
  };
}
