/** Chat-completions request bodies -> harmony conversations, and their rejection of bad input. */
import { describe, expect, it } from 'vitest';
import { conversationFromChatRequest, renderPrompt } from '../engine/harmony/index.ts';

const weatherTool = {
  type: 'function',
  function: { name: 'get_weather', description: 'Weather now.', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

describe('conversationFromChatRequest', () => {
  it('merges system and developer messages into the instructions and maps tools and effort', () => {
    const conv = conversationFromChatRequest(
      {
        reasoning_effort: 'low',
        tools: [weatherTool],
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'developer', content: [{ type: 'text', text: 'Use metric.' }] },
          { role: 'user', content: 'Hi' },
        ],
      },
      { currentDate: '2025-01-02' },
    );
    expect(conv).toEqual({
      reasoningEffort: 'low',
      currentDate: '2025-01-02',
      instructions: 'Be brief.\n\nUse metric.',
      tools: [{ name: 'get_weather', description: 'Weather now.', parameters: weatherTool.function.parameters }],
      messages: [{ role: 'user', content: 'Hi' }],
    });
    const p = renderPrompt(conv);
    expect(p).toContain('Current date: 2025-01-02\n\nReasoning: low');
    expect(p).toContain('# Instructions\n\nBe brief.\n\nUse metric.\n\n# Tools\n\n## functions\n\nnamespace functions {\n\n// Weather now.\ntype get_weather = (_: {\ncity: string,\n}) => any;');
  });

  it('defaults to medium effort, no date, no developer message', () => {
    const conv = conversationFromChatRequest({ messages: [{ role: 'user', content: 'x' }] });
    expect(conv).toEqual({ reasoningEffort: 'medium', messages: [{ role: 'user', content: 'x' }] });
  });

  it('maps reasoning, tool calls and tool results', () => {
    const conv = conversationFromChatRequest({
      tools: [weatherTool],
      messages: [
        { role: 'user', content: 'Weather in Paris?' },
        {
          role: 'assistant',
          content: null,
          reasoning_content: 'Need the tool.',
          tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
        },
        { role: 'tool', tool_call_id: 'call_1', content: '{"temp":21}' },
        { role: 'assistant', reasoning: 'Answer.', content: 'It is 21 °C.' },
        { role: 'user', content: 'Thanks' },
      ],
    });
    expect(conv.messages).toEqual([
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', channel: 'analysis', content: 'Need the tool.' },
      { role: 'assistant', channel: 'commentary', recipient: 'functions.get_weather', contentType: '<|constrain|>json', content: '{"city":"Paris"}' },
      { role: 'tool', name: 'functions.get_weather', content: '{"temp":21}' },
      { role: 'assistant', channel: 'analysis', content: 'Answer.' },
      { role: 'assistant', channel: 'final', content: 'It is 21 °C.' },
      { role: 'user', content: 'Thanks' },
    ]);
    expect(renderPrompt(conv)).toContain(
      '<|start|>user<|message|>Weather in Paris?<|end|>' +
        '<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}<|call|>' +
        '<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>{"temp":21}<|end|>' +
        '<|start|>assistant<|channel|>final<|message|>It is 21 °C.<|end|><|start|>user<|message|>Thanks<|end|><|start|>assistant',
    );
  });

  it('renders content beside tool calls as a commentary preamble, object arguments as JSON', () => {
    const conv = conversationFromChatRequest({
      messages: [
        { role: 'user', content: 'x' },
        { role: 'assistant', content: 'Checking.', tool_calls: [{ id: 'a', function: { name: 'f', arguments: { k: 1 } } }] },
        { role: 'tool', tool_call_id: 'a', content: [{ type: 'text', text: 'ok' }] },
      ],
    });
    expect(conv.messages.slice(1)).toEqual([
      { role: 'assistant', channel: 'commentary', content: 'Checking.' },
      { role: 'assistant', channel: 'commentary', recipient: 'functions.f', contentType: '<|constrain|>json', content: '{"k":1}' },
      { role: 'tool', name: 'functions.f', content: 'ok' },
    ]);
  });

  it('rejects malformed requests naming the field', () => {
    const bad: [unknown, RegExp, ErrorConstructor][] = [
      [{ messages: 'hi' }, /messages must be an array/, TypeError],
      [{ messages: [{ role: 'robot', content: 'x' }] }, /messages\[0\]\.role/, RangeError],
      [{ messages: [{ role: 'user' }] }, /messages\[0\]\.content/, TypeError],
      [{ messages: [{ role: 'assistant' }] }, /messages\[0\]\.content is missing/, TypeError],
      [{ messages: [{ role: 'user', content: [{ type: 'image_url' }] }] }, /messages\[0\]\.content\[0\]/, TypeError],
      [{ messages: [{ role: 'tool', tool_call_id: 'zz', content: 'x' }] }, /messages\[0\]\.tool_call_id "zz"/, RangeError],
      [{ messages: [], reasoning_effort: 'max' }, /reasoning_effort/, RangeError],
      [{ messages: [], reasoning_effort: 3 }, /reasoning_effort/, TypeError],
      [{ messages: [], tools: [{ type: 'retrieval' }] }, /tools\[0\]\.type/, RangeError],
      [{ messages: [], tools: [{ type: 'function', function: { name: '' } }] }, /tools\[0\]\.function\.name/, TypeError],
      [{ messages: [], tool_choice: 'sometimes' }, /tool_choice/, RangeError],
    ];
    for (const [req, msg, cls] of bad) {
      expect(() => conversationFromChatRequest(req as never), JSON.stringify(req)).toThrow(cls);
      expect(() => conversationFromChatRequest(req as never), JSON.stringify(req)).toThrow(msg);
    }
  });
});
