import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError } from 'commander';
import { integerArg } from './args.ts';

test('integerArg takes decimal integers from its minimum up and names the option when refusing', () => {
  const port = integerArg('--port', 0);
  assert.equal(port('0'), 0);
  assert.equal(port(' 8080 '), 8080);
  assert.equal(integerArg('--max-reconnects', -1)('-1'), -1);
  for (const [bad, why] of [
    ['-1', /--port must be an integer >= 0/],
    ['1.5', /--port must be an integer$/],
    ['1e3', /--port must be an integer$/],
    ['', /--port must be an integer$/],
    ['0x10', /--port must be an integer$/],
    ['99999999999999999999', /--port must be an integer >= 0/],
  ] as const) {
    assert.throws(() => port(bad), (e: Error) => e instanceof InvalidArgumentError && why.test(e.message), bad);
  }
});
