/**
 * From the model's harmony output to OpenAI fields, without a GPU: real token ids of model
 * output go through the streaming parser and the channel mapper, token by token.
 */
import { describe, expect, it } from 'vitest';
import { ChannelMapper } from '../engine/api/chat.ts';
import { HarmonyParser } from '../engine/harmony/index.ts';
import { realTokenizer } from './helpers/scripted-model.ts';

async function mapOutput(text: string, stops: string[] = []) {
  const tok = await realTokenizer();
  const parser = new HarmonyParser();
  const dec = tok.streamDecoder();
  const mapper = new ChannelMapper(stops);
  const deltas: Record<string, unknown>[] = [];
  for (const id of tok.encode(text)) {
    for (const e of parser.push(id, dec.push(id))) deltas.push(...mapper.map(e));
    if (mapper.stopped) break;
  }
  for (const e of parser.finish()) deltas.push(...mapper.map(e));
  deltas.push(...mapper.flush());
  return { mapper, deltas };
}

describe('harmony output -> OpenAI fields', () => {
  it('analysis becomes reasoning_content, final becomes content', async () => {
    const { mapper, deltas } = await mapOutput('<|channel|>analysis<|message|>The user greets. Answer briefly.<|end|><|start|>assistant<|channel|>final<|message|>Hi there! 👋<|return|>');
    expect(mapper.reasoning).toBe('The user greets. Answer briefly.');
    expect(mapper.content).toBe('Hi there! 👋');
    expect(deltas.filter((d) => 'reasoning_content' in d).map((d) => d.reasoning_content).join('')).toBe(mapper.reasoning);
    expect(deltas.filter((d) => 'content' in d).map((d) => d.content).join('')).toBe(mapper.content);
    expect(mapper.toolCalls).toEqual([]);
  });

  it('a commentary message to functions.X becomes a tool call with streamed arguments', async () => {
    const { mapper, deltas } = await mapOutput('<|channel|>analysis<|message|>Need weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Tokyo","unit":"c"}<|call|>');
    expect(mapper.called).toBe(true);
    expect(mapper.toolCalls).toHaveLength(1);
    expect(mapper.toolCalls[0]!.function).toEqual({ name: 'get_weather', arguments: '{"city":"Tokyo","unit":"c"}' });
    const streamed = deltas.flatMap((d) => (d.tool_calls as { function: { arguments?: string } }[] | undefined) ?? []).map((t) => t.function.arguments ?? '').join('');
    expect(streamed).toBe('{"city":"Tokyo","unit":"c"}');
    expect(mapper.content).toBe('');
  });

  it('stop strings cut the answer, even across token boundaries, and hold back partial matches', async () => {
    const { mapper } = await mapOutput('<|channel|>final<|message|>one, two, three, four<|return|>', [', thr']);
    expect(mapper.content).toBe('one, two');
    expect(mapper.stopped).toBe(true);
    const { mapper: m2 } = await mapOutput('<|channel|>final<|message|>ends with a partial stop: ab<|return|>', ['abc']);
    expect(m2.content).toBe('ends with a partial stop: ab');
    expect(m2.stopped).toBe(false);
  });

  it('malformed output still yields text, never an exception', async () => {
    const { mapper } = await mapOutput('just text without any header<|end|>');
    expect(mapper.content + mapper.reasoning).not.toContain('<|');
  });
});
