// Loads a model directory's tokenizer with Hugging Face's transformers.js AutoTokenizer, offline, and prints what
// lm-evaluation-harness's local-completions reads from a transformers tokenizer: the class, BOS and EOS, and the
// encodings of the texts given as a JSON array in argv[4] (with and without special tokens).
// Usage: node load-tokenizer.mjs INSTALL_DIR MODEL_DIR OUT_JSON TEXTS_JSON
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import path from 'node:path';

const [installDir, modelDir, outFile, textsFile] = process.argv.slice(2);
const require = createRequire(path.join(installDir, 'package.json'));
const entry = require.resolve('@huggingface/transformers');
const { AutoTokenizer, env } = await import(pathToFileURL(entry).href);
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = '/';
const dir = path.resolve(modelDir);
const tok = await AutoTokenizer.from_pretrained(dir, { local_files_only: true });
const texts = JSON.parse(readFileSync(textsFile, 'utf8'));
const out = {
  version: JSON.parse(readFileSync(path.join(installDir, 'node_modules/@huggingface/transformers/package.json'), 'utf8')).version,
  class: tok.constructor.name,
  bos_token: tok.bos_token ?? null,
  eos_token: tok.eos_token ?? null,
  bos_token_id: tok.bos_token_id ?? null,
  eos_token_id: tok.eos_token_id ?? null,
  with_special: texts.map((t) => tok.encode(t)),
  without_special: texts.map((t) => tok.encode(t, { add_special_tokens: false })),
};
writeFileSync(outFile, JSON.stringify(out));
