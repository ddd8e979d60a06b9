/**
 * Harmony prompt rendering against the reference: SPEC §5's token vector, openai/harmony
 * docs/format.md and test-data/, and renderings derived from openai/harmony src/encoding.rs.
 */
import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { blobSource } from '../loader/source-blob.ts';
import { GptOssTokenizer } from '../loader/tokenizer.ts';
import { tokenizerFiles } from '../loader/synth-writer-node.ts';
import {
  jsonSchemaToTypeScript, renderPrompt, renderPromptIds, renderPromptIdsAsync, type FunctionTool, type HarmonyConversation,
} from '../engine/harmony/index.ts';

let loaded: Promise<GptOssTokenizer> | undefined;
function loadTokenizer(): Promise<GptOssTokenizer> {
  loaded ??= (async () => {
    const files = new Map<string, Blob>();
    for (const f of tokenizerFiles()) files.set(f.name, new Blob([await readFile(f.path)]));
    return GptOssTokenizer.load(blobSource(files));
  })();
  return loaded;
}

const SYSTEM_NO_DATE =
  '<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\nKnowledge cutoff: 2024-06\n\n' +
  'Reasoning: medium\n\n# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>';

// openai/harmony docs/format.md, "Function calling" (also tests.rs test_render_functions_with_parameters).
const WEATHER_TOOLS: FunctionTool[] = [
  { name: 'get_location', description: 'Gets the location of the user.' },
  {
    name: 'get_current_weather',
    description: 'Gets the current weather in the provided location.',
    parameters: {
      type: 'object',
      properties: {
        location: { type: 'string', description: 'The city and state, e.g. San Francisco, CA' },
        format: { type: 'string', enum: ['celsius', 'fahrenheit'], default: 'celsius' },
      },
      required: ['location'],
    },
  },
  {
    name: 'get_multiple_weathers',
    description: 'Gets the current weather in the provided list of locations.',
    parameters: {
      type: 'object',
      properties: {
        locations: { type: 'array', items: { type: 'string' }, description: 'List of city and state, e.g. ["San Francisco, CA", "New York, NY"]' },
        format: { type: 'string', enum: ['celsius', 'fahrenheit'], default: 'celsius' },
      },
      required: ['locations'],
    },
  },
];

const FORMAT_MD_PROMPT = `<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.
Knowledge cutoff: 2024-06
Current date: 2025-06-28

Reasoning: high

# Valid channels: analysis, commentary, final. Channel must be included for every message.
Calls to these tools must go to the commentary channel: 'functions'.<|end|><|start|>developer<|message|># Instructions

Use a friendly tone.

# Tools

## functions

namespace functions {

// Gets the location of the user.
type get_location = () => any;

// Gets the current weather in the provided location.
type get_current_weather = (_: {
// The city and state, e.g. San Francisco, CA
location: string,
format?: "celsius" | "fahrenheit", // default: celsius
}) => any;

// Gets the current weather in the provided list of locations.
type get_multiple_weathers = (_: {
// List of city and state, e.g. ["San Francisco, CA", "New York, NY"]
locations: string[],
format?: "celsius" | "fahrenheit", // default: celsius
}) => any;

} // namespace functions<|end|><|start|>user<|message|>What is the weather like in SF?<|end|>`;

describe('harmony renderPrompt', () => {
  it('matches the SPEC §5 test vector token for token, through the id renderer', async () => {
    const tok = await loadTokenizer();
    const conv: HarmonyConversation = { reasoningEffort: 'medium', messages: [{ role: 'user', content: 'What is 2 + 2?' }] };
    const prompt = renderPrompt(conv);
    expect(prompt).toBe(`${SYSTEM_NO_DATE}<|start|>user<|message|>What is 2 + 2?<|end|><|start|>assistant`);
    // prettier-ignore
    const spec = [200006, 17360, 200008, 3575, 553, 17554, 162016, 11, 261, 4410, 6439, 2359, 22203, 656, 7788, 17527, 558, 87447, 100594, 25, 220, 1323, 19, 12, 3218, 279, 30377, 289, 25, 14093, 279, 2, 13888, 18403, 25, 8450, 11, 49159, 11, 1721, 13, 21030, 2804, 413, 7360, 395, 1753, 3176, 13, 200007, 200006, 1428, 200008, 4827, 382, 220, 17, 659, 220, 17, 30, 200007, 200006, 173781];
    expect(renderPromptIds(conv, tok)).toEqual(spec);
    expect(await renderPromptIdsAsync(conv, tok, { maxTokens: spec.length })).toEqual(spec);
    expect(tok.encode(prompt)).toEqual(spec);
  });

  it('gives the ids of the whole spelled-out prompt for the conversations below (tools, tool calls, constrain)', async () => {
    const tok = await loadTokenizer();
    const convs: HarmonyConversation[] = [
      { reasoningEffort: 'high', currentDate: '2025-06-28', instructions: 'Use a friendly tone.', tools: WEATHER_TOOLS, messages: [{ role: 'user', content: 'What is the weather like in SF?' }] },
      {
        reasoningEffort: 'medium',
        tools: WEATHER_TOOLS,
        messages: [
          { role: 'user', content: 'What is the weather in SF?' },
          { role: 'assistant', channel: 'analysis', content: 'User asks: “What is the weather in SF?” We need to use lookup_weather tool.' },
          { role: 'assistant', channel: 'commentary', recipient: 'functions.lookup_weather', contentType: '<|constrain|>json', content: '{"location": "San Francisco"}' },
          { role: 'tool', name: 'functions.lookup_weather', content: '{"temperature": 20, "description": "sunny"}' },
          { role: 'assistant', channel: 'final', content: 'It is sunny.' },
          { role: 'user', content: 'Thanks!\n' },
        ],
      },
    ];
    for (const conv of convs) {
      const whole = tok.encode(renderPrompt(conv));
      expect(renderPromptIds(conv, tok)).toEqual(whole);
      expect(await renderPromptIdsAsync(conv, tok)).toEqual(whole);
    }
  });

  it('renders the date line and reasoning low/high', () => {
    for (const effort of ['low', 'high'] as const) {
      const p = renderPrompt({ reasoningEffort: effort, currentDate: '2021-01-01', messages: [] });
      expect(p).toBe(
        '<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\nKnowledge cutoff: 2024-06\nCurrent date: 2021-01-01\n\n' +
          `Reasoning: ${effort}\n\n# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|><|start|>assistant`,
      );
    }
    expect(() => renderPrompt({ reasoningEffort: 'max' as never, messages: [] })).toThrow(RangeError);
  });

  it('renders developer instructions (openai/harmony test-data/test_simple_convo_*_effort.txt shape)', () => {
    const p = renderPrompt({ reasoningEffort: 'low', instructions: "Answer the user's questions like a robot.", messages: [{ role: 'user', content: 'Hi' }] });
    expect(p).toContain("<|end|><|start|>developer<|message|># Instructions\n\nAnswer the user's questions like a robot.<|end|><|start|>user<|message|>Hi<|end|>");
    expect(renderPrompt({ reasoningEffort: 'low', instructions: '', messages: [] })).not.toContain('developer');
  });

  it('renders function tools exactly as openai/harmony docs/format.md', () => {
    const conv: HarmonyConversation = {
      reasoningEffort: 'high',
      currentDate: '2025-06-28',
      instructions: 'Use a friendly tone.',
      tools: WEATHER_TOOLS,
      messages: [{ role: 'user', content: 'What is the weather like in SF?' }],
    };
    expect(renderPrompt(conv)).toBe(`${FORMAT_MD_PROMPT}<|start|>assistant`);
  });

  it('renders tools without instructions as a developer message with only # Tools', () => {
    const p = renderPrompt({ reasoningEffort: 'medium', tools: [{ name: 'ping' }], messages: [] });
    expect(p).toContain("Calls to these tools must go to the commentary channel: 'functions'.<|end|>");
    expect(p).toContain('<|start|>developer<|message|># Tools\n\n## functions\n\nnamespace functions {\n\ntype ping = () => any;\n\n} // namespace functions<|end|>');
  });

  it('converts the kitchensink schema as openai/harmony src/encoding.rs does', () => {
    // The schema of tests.rs test_render_functions_with_parameters. Expected text derived from
    // encoding.rs json_schema_to_typescript: property oneOf variants are prefixed with
    // `{indent} | ` (indent '' at top level). Third-party copies of the reference file show
    // four spaces there; we follow the source.
    const schema = {
      description: 'params object',
      type: 'object',
      properties: {
        string: { type: 'string', title: 'STRING', description: 'A string', examples: ['hello', 'world'] },
        string_nullable: { type: 'string', nullable: true, description: 'A nullable string', default: 'the default' },
        string_enum: { type: 'string', enum: ['a', 'b', 'c'] },
        oneof_string_or_number: {
          oneOf: [{ type: 'string', default: 'default_string_in_oneof' }, { type: 'number', description: 'numbers can happen too' }],
          description: 'a oneof',
          default: 20,
        },
      },
    };
    expect(jsonSchemaToTypeScript(schema)).toBe(`// params object
{
// STRING
//
// A string
// Examples:
// - "hello"
// - "world"
string?: string,
// A nullable string
string_nullable?: string | null, // default: "the default"
string_enum?: "a" | "b" | "c",
// a oneof
// default: 20
oneof_string_or_number?:
 | string // default: "default_string_in_oneof"
 | number // numbers can happen too
,
}`);
  });

  it('converts integers, booleans, type arrays, arrays of objects, nested objects and defaults', () => {
    const schema = {
      type: 'object',
      properties: {
        count: { type: 'integer', description: 'How many', default: 3 },
        verbose: { type: 'boolean', default: false },
        id: { type: ['string', 'integer'] },
        tags: { type: 'array' },
        unit: { type: 'string', enum: ['c', 'f'], nullable: true },
        point: {
          type: 'object',
          description: 'A point',
          properties: { x: { type: 'number' }, y: { type: 'number', description: 'Vertical' } },
          required: ['x'],
        },
        items: { type: 'array', items: { type: 'object', properties: { n: { type: 'string' } }, required: ['n'] } },
        anything: {},
      },
      required: ['count', 'point'],
    };
    expect(jsonSchemaToTypeScript(schema)).toBe(`{
// How many
count: number, // default: 3
verbose?: boolean, // default: false
id?: string | number,
tags?: Array<any>,
unit?: "c" | "f" | null,
// A point
point:     // A point
{
    x: number,
    // Vertical
    y?: number,
    },
items?: {
    n: string,
    }[],
anything?: any,
}`);
  });

  it('drops analysis once a final answer follows (openai/harmony tests.rs test_dropping_cot_by_default)', () => {
    const p = renderPrompt({
      reasoningEffort: 'medium',
      messages: [
        { role: 'user', content: 'What is 2 + 2?' },
        { role: 'assistant', channel: 'analysis', content: 'User asks: “What is 2 + 2?” Simple arithmetic. Provide answer.' },
        { role: 'assistant', channel: 'final', content: '2 + 2 equals 4.' },
        { role: 'user', content: 'What about 9 / 2?' },
      ],
    });
    expect(p).toBe(
      `${SYSTEM_NO_DATE}<|start|>user<|message|>What is 2 + 2?<|end|><|start|>assistant<|channel|>final<|message|>2 + 2 equals 4.<|end|>` +
        '<|start|>user<|message|>What about 9 / 2?<|end|><|start|>assistant',
    );
  });

  it('keeps analysis before a pending tool call and renders the call and its result', () => {
    // openai/harmony test-data/test_does_not_drop_if_ongoing_analysis.txt, with the tool result in
    // the form of docs/format.md ("<|start|>{toolname} to=assistant<|channel|>commentary<|message|>").
    const p = renderPrompt({
      reasoningEffort: 'medium',
      messages: [
        { role: 'user', content: 'What is the weather in SF?' },
        { role: 'assistant', channel: 'analysis', content: 'User asks: “What is the weather in SF?” We need to use lookup_weather tool.' },
        { role: 'assistant', channel: 'commentary', recipient: 'functions.lookup_weather', contentType: '<|constrain|>json', content: '{"location": "San Francisco"}' },
        { role: 'tool', name: 'functions.lookup_weather', content: '{"temperature": 20, "description": "sunny"}' },
      ],
    });
    expect(p).toBe(
      `${SYSTEM_NO_DATE}<|start|>user<|message|>What is the weather in SF?<|end|><|start|>assistant<|channel|>analysis<|message|>User asks: “What is the weather in SF?” We need to use lookup_weather tool.<|end|>` +
        '<|start|>assistant<|channel|>commentary to=functions.lookup_weather <|constrain|>json<|message|>{"location": "San Francisco"}<|call|>' +
        '<|start|>functions.lookup_weather to=assistant<|channel|>commentary<|message|>{"temperature": 20, "description": "sunny"}<|end|><|start|>assistant',
    );
  });

  it('drops the tool-call analysis too once the final answer follows', () => {
    const p = renderPrompt({
      reasoningEffort: 'medium',
      messages: [
        { role: 'user', content: 'Weather?' },
        { role: 'assistant', channel: 'analysis', content: 'Need tool.' },
        { role: 'assistant', channel: 'commentary', recipient: 'functions.w', contentType: '<|constrain|>json', content: '{}' },
        { role: 'tool', name: 'functions.w', content: 'sunny' },
        { role: 'assistant', channel: 'analysis', content: 'It is sunny.' },
        { role: 'assistant', channel: 'final', content: 'Sunny.' },
        { role: 'user', content: 'Thanks' },
        { role: 'assistant', channel: 'analysis', content: 'Pending.' },
        { role: 'assistant', channel: 'commentary', recipient: 'functions.w', contentType: '<|constrain|>json', content: '{}' },
      ],
    });
    expect(p).not.toContain('Need tool.');
    expect(p).not.toContain('It is sunny.');
    expect(p).toContain('<|start|>assistant<|channel|>analysis<|message|>Pending.<|end|>');
    expect(p).toContain('<|start|>assistant<|channel|>final<|message|>Sunny.<|end|>');
  });
});
