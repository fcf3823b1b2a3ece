/**
 * Makes a real file or folder read-only for this process, and back. Root ignores file
 * modes, so as root the immutable attribute is used (chattr +i, ext4/xfs/btrfs: the
 * kernel refuses every write, even root's); otherwise chmod does it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

const isRoot = process.getuid?.() === 0;

export function makeReadOnly(path: string): void {
  if (isRoot) execFileSync('chattr', ['+i', path]);
  else fs.chmodSync(path, fs.statSync(path).isDirectory() ? 0o555 : 0o444);
}

export function makeWritable(path: string): void {
  if (!fs.existsSync(path)) return;
  if (isRoot) execFileSync('chattr', ['-i', path]);
  else fs.chmodSync(path, fs.statSync(path).isDirectory() ? 0o700 : 0o600);
}
