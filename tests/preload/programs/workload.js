// tests/preload/programs/workload.js — allocation-heavy JavaScript for the preload suite.
//
// How it works: builds plain objects, Maps and Sets, long strings by concatenation and by
// Array.join, a JSON round trip of nested data, and sorts 100,000 records; every result is folded
// into a SHA-256 checksum (node's crypto) that is printed with a few totals. The numbers come
// from a fixed xorshift generator, so the output is the same on every run.
'use strict';
const crypto = require('crypto');

let state = 0x2545f491;
function next() {  // xorshift32: the same sequence on every run
  state ^= state << 13; state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5; state >>>= 0;
  return state;
}

const hash = crypto.createHash('sha256');

// Objects and Maps.
const counts = new Map();
const objects = [];
for (let i = 0; i < 150000; i++) {
  const key = 'k' + (next() % 40000);
  counts.set(key, (counts.get(key) || 0) + 1);
  objects.push({id: i, key, payload: [next() % 1000, next() % 1000, 'p' + i]});
}
const keys = [...counts.keys()].sort();
hash.update(keys.map((k) => k + '=' + counts.get(k)).join(','));

// String building: repeated concatenation and join.
let text = '';
for (let i = 0; i < 50000; i++) text += String.fromCharCode(97 + (next() % 26));
const parts = [];
for (let i = 0; i < 50000; i++) parts.push(text.slice(i % 1000, (i % 1000) + 20));
const joined = parts.join('|');
hash.update(joined);

// A JSON round trip.
const doc = {objects: objects.slice(0, 30000), meta: {distinct: counts.size}};
const json = JSON.stringify(doc);
const back = JSON.parse(json);
if (JSON.stringify(back) !== json) throw new Error('JSON round trip changed the document');
hash.update(json);

// Sets and sorting records by a computed key.
const seen = new Set();
for (const o of objects) seen.add(o.payload[0] * 1000 + o.payload[1]);
const records = objects.slice(0, 100000);
records.sort((a, b) => (a.payload[0] - b.payload[0]) || (a.id - b.id));
hash.update(records.slice(0, 500).map((r) => r.id).join(','));

console.log('distinct keys:', counts.size);
console.log('distinct pairs:', seen.size);
console.log('joined length:', joined.length);
console.log('sorted records:', records.length);
console.log('checksum:', hash.digest('hex'));
