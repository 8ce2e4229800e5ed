#!/usr/bin/env node
// The `portsnare` command: runs bin/portsnare.ts through tsx, so a clone works after `npm ci`
// with no build step. `npx portsnare` runs this file through a symlink, so the entry point is
// called here rather than detected from process.argv.
'use strict';
require('tsx/cjs');
require('./portsnare.ts').main();
