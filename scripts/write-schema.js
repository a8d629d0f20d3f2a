'use strict';
// Writes config.schema.json (the JSON Schema editors use for config.json) from the zod schema in
// dist/; `npm run schema` after a change to src/shared/config/schema.ts (a test checks they agree).
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { configJsonSchema } = require('../dist/src/shared/config/schema.js');

writeFileSync(join(__dirname, '..', 'config.schema.json'), `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
