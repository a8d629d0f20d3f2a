'use strict';
// After tsc: the command's entry (dist/master.js) and the ES module entry of the
// package (dist/src/index.mjs with its types), which re-exports the CommonJS build
// so that `import` and `require` share one copy of the code.
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');

const dist = join(__dirname, '..', 'dist');
writeFileSync(join(dist, 'master.js'), "#!/usr/bin/env node\n'use strict';\nrequire('./src/master/main.js');\n", { mode: 0o755 });
const names = Object.keys(require(join(dist, 'src', 'index.js'))).filter((name) => name !== '__esModule');
writeFileSync(join(dist, 'src', 'index.mjs'), `import entry from './index.js';\n\nexport const { ${names.join(', ')} } = entry;\n`);
writeFileSync(join(dist, 'src', 'index.d.mts'), "export * from './index.js';\n");
