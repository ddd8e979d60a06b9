/** `gptoss serve`: an OpenAI-compatible HTTP server for a local model. */
import { parseArgs } from 'node:util';
import { createEngine } from '../engine/api/engine.ts';
import { DEFAULT_MAX_TOKENS_CAP, DEFAULT_REQUEST_TIMEOUT, serve } from '../server/openai-server.ts';
import { parseCorsOrigins } from '../server/security.ts';
import { describeConfig } from '../loader/config.ts';
import { intFlag, requireFlag, UsageError, weightsFlag } from './args.ts';
import { MODEL_SOURCE_FLAGS, MODEL_SOURCE_USAGE, modelSourceOptions, progressPrinter } from './model-flags.ts';

export const command = {
  summary: 'serve a model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/responses)',
  usage: [
    'Usage: gptoss serve --model DIR|URL [--port 8080] [--host 127.0.0.1] [--api-key KEY]',
    '                    [--cors ORIGIN[,ORIGIN]] [--max-tokens-cap N] [--request-timeout SECONDS]',
    '                    [--model-id NAME] [--context N] [--kv q8|f32] [--weights bf16|q8]',
    '                    [--manifest FILE|URL] [--revision REV]',
    '',
    ...MODEL_SOURCE_USAGE,
    'Endpoints: POST /v1/chat/completions (JSON or SSE with "stream": true), POST /v1/responses,',
    'GET /v1/models, GET /health. Requests queue for the GPU.',
    'Binds to 127.0.0.1 and answers only Host localhost, 127.0.0.1 or [::1] (421 otherwise) unless',
    '--host names a public address (0.0.0.0, ::, a LAN address: warns without --api-key). With',
    '--api-key every request but /health needs "Authorization: Bearer KEY". No web page may call',
    'the server unless --cors lists its origin ("*": any). POST bodies must be application/json.',
    `--max-tokens-cap (default ${DEFAULT_MAX_TOKENS_CAP}): a larger max_tokens is a 400; a request without one gets`,
    'min(cap, the context left). --request-timeout (default ' + DEFAULT_REQUEST_TIMEOUT + ', 0: none): seconds a generation',
    'may hold the GPU; then it stops and the answer ends with finish_reason "length".',
  ].join('\n'),
  async run(argv: string[]): Promise<void> {
    const { values } = parseArgs({
      args: argv,
      options: {
        model: { type: 'string' }, port: { type: 'string', default: '8080' }, host: { type: 'string', default: '127.0.0.1' },
        'api-key': { type: 'string' }, 'model-id': { type: 'string' }, context: { type: 'string' }, kv: { type: 'string', default: 'q8' }, weights: { type: 'string' },
        cors: { type: 'string' }, 'max-tokens-cap': { type: 'string' }, 'request-timeout': { type: 'string' },
        ...MODEL_SOURCE_FLAGS,
      },
    });
    if (values.kv !== 'q8' && values.kv !== 'f32') throw new UsageError(`--kv must be q8 or f32, got ${JSON.stringify(values.kv)}`);
    const port = intFlag(values.port, 'port', 0)!;
    if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
    if (values['api-key'] === '') throw new UsageError('--api-key must not be empty');
    let cors: string[] | undefined;
    try {
      cors = values.cors === undefined ? undefined : parseCorsOrigins(values.cors);
    } catch (e) {
      throw new UsageError(`--${(e as Error).message}`);
    }
    const maxTokensCap = intFlag(values['max-tokens-cap'], 'max-tokens-cap', 1);
    const timeoutText = values['request-timeout'];
    const requestTimeout = timeoutText === undefined ? undefined : Number(timeoutText);
    if (requestTimeout !== undefined && (timeoutText!.trim() === '' || !Number.isFinite(requestTimeout) || requestTimeout < 0)) {
      throw new UsageError(`--request-timeout must be a number of seconds >= 0 (0: no limit), got ${JSON.stringify(timeoutText)}`);
    }
    const engine = await createEngine({
      model: requireFlag(values.model, 'model'),
      modelId: values['model-id'],
      contextLimit: intFlag(values.context, 'context', 1),
      kvFormat: values.kv,
      weights: weightsFlag(values.weights),
      onProgress: progressPrinter(),
      ...modelSourceOptions(values),
    });
    const running = await serve(engine, {
      port, host: values.host, apiKey: values['api-key'], cors, maxTokensCap, requestTimeout,
      log: (line) => process.stderr.write(`${new Date().toISOString()} ${line}\n`),
      warn: (line) => process.stderr.write(`${line}\n`),
    });
    const a = engine.adapter;
    process.stderr.write(`${engine.modelId}: ${engine.config ? describeConfig(engine.config) : ''}\nadapter: ${a ? `${a.vendor} ${a.architecture} ${a.description}` : 'none'}\n`);
    console.log(`listening on ${running.url}`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await running.close();
    await engine.dispose();
  },
};
