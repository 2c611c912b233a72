#!/usr/bin/env node
import { buildCli } from '../dist/main.js';

await buildCli().parseAsync(process.argv);
