/**
 * `gptoss chat` as a user runs it: the built bin/gptoss.js in a child process with piped stdin,
 * on a scripted real checkpoint (test/helpers/scripted-model.ts) whose answer is ANSWER_TEXT.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnswerPrinter } from '../cli/chat.ts';
import { ANSWER_SCRIPT, ANSWER_TEXT, LOOP_SCRIPT, realTokenizer, writeScriptedCheckpoint } from './helpers/scripted-model.ts';

const BIN = fileURLToPath(new URL('../bin/gptoss.js', import.meta.url));

interface Run { code: number | null; stdout: string; stderr: string }

/** Runs `gptoss chat` with the lines piped to its stdin, then end of input. */
function chat(args: string[], lines: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'chat', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(lines.map((l) => `${l}\n`).join(''));
  });
}

const count = (s: string, sub: string) => s.split(sub).length - 1;

let tmp = '';
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'gptoss-chat-'));
  const tok = await realTokenizer();
  await writeScriptedCheckpoint(join(tmp, 'chat'), [tok.encode(ANSWER_SCRIPT)]);
  await writeScriptedCheckpoint(join(tmp, 'loop'), [tok.encode(LOOP_SCRIPT)]);
}, 120_000);

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('gptoss chat', () => {
  it('answers, keeps going through commands and a bad effort, and quits on /exit', async () => {
    const r = await chat(['--model', join(tmp, 'chat')], ['Hello', '/effort high', '/effort extreme', 'Again', '/reset', '/exit', 'Never read']);
    expect(r.code, r.stderr).toBe(0);
    expect(count(r.stdout, ANSWER_TEXT), r.stdout).toBe(2);
    expect(r.stdout + r.stderr).toMatch(/\[\d+ tokens in [\d.]+ s, [\d.]+ tokens\/s, time to first token [\d.]+ s\]/);
    expect(count(r.stderr, 'tokens/s')).toBe(2);
    expect(r.stderr).toContain('error: /effort takes low, medium or high, got "extreme"');
    expect(r.stderr).toContain('(reasoning effort high)');
    expect(r.stderr).toContain('(conversation cleared)');
    expect(r.stdout + r.stderr).not.toContain('\x1b['); // piped: no ANSI styles
  }, 90_000);

  it('reports a prompt over the context limit and carries on', async () => {
    // The system message and "Hello" fit in 100 tokens with room for the answer; 200 words do not.
    const r = await chat(['--model', join(tmp, 'chat'), '--context', '100'], ['word '.repeat(200), 'Hello']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/error: the prompt is (at least )?\d+ tokens; this model's context limit is 100/);
    expect(count(r.stdout, ANSWER_TEXT), r.stderr).toBe(1);
  }, 90_000);

  it('stops an endless answer on SIGINT and returns to the prompt', async () => {
    // Piped stdin has no terminal to turn Ctrl-C into a readline event: the signal itself aborts.
    const child = spawn(process.execPath, [BIN, 'chat', '--model', join(tmp, 'loop'), '--context', '2048'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d) => {
        stdout += d;
        if (/( la li lo){3}/.test(stdout)) resolve();
      });
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => reject(new Error(`chat exited with ${code} before streaming: ${stderr}`)));
      child.stdin.write('Hi\n');
    });
    child.kill('SIGINT');
    for (let i = 0; i < 200 && !stderr.includes('[aborted'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(stderr).toContain('[aborted; this turn was not kept]');
    child.stdin.end('/exit\n');
    expect(await exited, stderr).toBe(0);
    expect(stderr).not.toContain('tokens/s'); // the answer never finished
  }, 90_000);

  it('rejects bad flags with usage', async () => {
    const r = await chat(['--model', join(tmp, 'chat'), '--effort', 'extreme'], []);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--effort must be low, medium or high');
  });
});

describe('the chat answer printer', () => {
  it('prefixes every reasoning line when piped and starts the answer on its own line', () => {
    let out = '';
    const p = new AnswerPrinter(false, (s) => (out += s));
    for (const part of ['Let me', ' think.\nThe user', ' says hi.', '']) p.reasoning(part);
    p.content('Hi');
    p.content(' there!');
    p.finish();
    expect(out).toBe('[reasoning] Let me think.\n[reasoning] The user says hi.\nHi there!\n');
  });

  it('dims the reasoning on a terminal', () => {
    let out = '';
    const p = new AnswerPrinter(true, (s) => (out += s));
    p.reasoning('Thinking.');
    p.content('Answer.');
    p.finish();
    expect(out).toBe('\x1b[2mThinking.\x1b[22m\nAnswer.\n');
  });
});
