/**
 * Checks shared by the platform tests (local-platform, soar-platform, soar-client): read a
 * stream whole, and assert that a promise rejects with a WorkerError (or a non-retryable
 * FunctionError with a given code), so each test states only what it expects.
 */
import type { Readable } from 'node:stream';
import { expect } from 'chai';
import { FunctionError, WorkerError } from '../../src/core/runtime/errors.js';

/** Reads a stream to its end (test files are small, or read for a hash check). */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The WorkerError `p` rejects with; fails the test if it resolves or rejects with anything else. */
export async function rejection(p: Promise<unknown>): Promise<WorkerError> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(WorkerError);
    return err as WorkerError;
  }
  expect.fail('expected a rejection');
}

/**
 * The FunctionError `p` rejects with, checked to carry `code`, to be final (not retryable)
 * and, when given, to match `message` (a RegExp) or include it (a string).
 */
export async function functionError(p: Promise<unknown>, code: string, message?: RegExp | string): Promise<FunctionError> {
  const err = await rejection(p);
  expect(err).to.be.instanceOf(FunctionError);
  expect(err.code, err.message).to.equal(code);
  expect(err.retryable).to.equal(false);
  if (message instanceof RegExp) expect(err.message).to.match(message);
  else if (message !== undefined) expect(err.message).to.include(message);
  return err as FunctionError;
}
