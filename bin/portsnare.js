#!/usr/bin/env node
// The `portsnare` command: runs bin/portsnare.ts through tsx, so a clone works after `npm ci`
// with no build step.
'use strict';
require('tsx/cjs');
require('./portsnare.ts');
