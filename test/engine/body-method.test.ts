// `_method` in POST bodies: which bodies frameworks read it from, and what they find there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bodyMethodOverrides,
  overridableBody,
  type BodyMethods,
} from '../../src/engine/body-method.js';

test('a POST with a form, multipart, JSON or no Content-Type may name its method, read as each framework reads the type; nothing else does', () => {
  const rows: [string, string | undefined, string[]][] = [
    ['POST', undefined, ['form']],
    ['POST', 'application/x-www-form-urlencoded; charset=UTF-8', ['form']],
    // Rack cuts the media type at `,` too, PHP at a space as well.
    ['POST', 'application/x-www-form-urlencoded,text/plain', ['form']],
    ['POST', 'application/x-www-form-urlencoded charset=x', ['form']],
    // Rack drops the whitespace before the cut: a tab too.
    ['POST', 'application/x-www-form-urlencoded\t;charset=utf-8', ['form']],
    ['POST', 'multipart/form-data\t; boundary=x', ['multipart']],
    ['POST', 'Multipart/Form-Data; boundary=x', ['multipart']],
    ['POST', 'multipart/mixed; boundary=x', ['multipart']],
    // Without a boundary Rack reads a multipart type as a form; one that names a boundary is
    // read as multipart, if it is plain.
    ['POST', 'multipart/related', ['form']],
    ['POST', 'multipart/form-data, boundary=x', ['multipart']],
    ['POST', 'application/json', ['json']],
    ['POST', 'application/vnd.api+json; charset=utf-8', ['json']],
    // Laravel: JSON wherever the header holds `/json` or `+json`.
    ['POST', 'application/jsonl', ['json']],
    ['POST', 'text/plain;x=/json', ['json']],
    ['POST', 'application/x-www-form-urlencoded; x=+json', ['form', 'json']],
    ['POST', 'application/octet-stream', []],
    ['POST', 'text/plain', []],
    ['PUT', 'application/x-www-form-urlencoded', []],
    ['GET', undefined, []],
  ];
  for (const [method, type, kinds] of rows)
    assert.deepEqual(overridableBody(method, type), kinds, `${method} ${type}`);
});

/** How a POST body of this type is read for `_method`. */
function read(body: string, type: string): BodyMethods {
  const kinds = overridableBody('POST', type);
  assert.ok(kinds.length > 0, type);
  return bodyMethodOverrides([Buffer.from(body)], kinds, type);
}

function methods(body: string, type: string): string[] {
  const found = read(body, type);
  assert.ok('methodOverrides' in found, `${type}: ${JSON.stringify(body)}`);
  return found.methodOverrides.map((o) => o.method);
}

test('the methods a body asks for, in each kind of body', () => {
  const form = 'application/x-www-form-urlencoded';
  assert.deepEqual(methods('a=1&_method=delete&_method=put', form), ['DELETE', 'PUT']);
  assert.deepEqual(methods('a=1&%5Fmethod=patch', form), ['PATCH']);
  assert.deepEqual(methods('a=1&method=delete', form), []);
  // PHP drops leading spaces and reads `.` and spaces in a name as `_`.
  assert.deepEqual(methods('.method=delete&+_method=put&%20.method=patch', form), [
    'DELETE',
    'PUT',
    'PATCH',
  ]);
  assert.deepEqual(methods('x.method=delete&_method_=put&__method=patch', form), []);
  // PHP ends a name at a NUL.
  assert.deepEqual(methods('_method%00=delete&.method%00x=put&x%00_method=patch', form), [
    'DELETE',
    'PUT',
  ]);
  assert.deepEqual(methods('{"_method":"DELETE","a":1}', 'application/json'), ['DELETE']);
  assert.deepEqual(methods('{"_\\u006dethod":"delete"}', 'application/json'), ['DELETE']);
  assert.deepEqual(methods('{"a":{"_method":"DELETE"}}', 'application/json'), []);
  assert.deepEqual(methods('[{"_method":"DELETE"}]', 'application/json'), []);
  assert.deepEqual(methods('{"_method":1}', 'application/json'), []);
  assert.deepEqual(methods('not json', 'application/json'), []);
  const part = (disposition: string, value: string) =>
    `--b0und\r\nContent-Disposition: ${disposition}\r\n\r\n${value}\r\n`;
  const multipart = [
    part('form-data; name="title"', 'x'),
    part('form-data; name="_method"', 'delete'),
    part('form-data; name=_method', 'put'),
    part('form-data; filename="a.txt"; name="_method"', 'patch'),
    part('form-data; name="_method_x"', 'trace'),
    part('form-data; name=".method"', 'options'),
    part('form-data; name="_method\0x"', 'connect'),
    '--b0und--\r\n',
  ].join('');
  assert.deepEqual(methods(multipart, 'multipart/form-data; boundary="b0und"'), [
    'DELETE',
    'PUT',
    'PATCH',
    'OPTIONS',
    'CONNECT',
  ]);
  assert.deepEqual(methods(multipart, 'multipart/form-data; boundary=b0und'), [
    'DELETE',
    'PUT',
    'PATCH',
    'OPTIONS',
    'CONNECT',
  ]);
  assert.deepEqual(methods(multipart, 'multipart/form-data'), []);
});

test('a multipart body is read only if plain, where frameworks find the same boundary, delimiters, headers and names; any other is refused', () => {
  const type = 'multipart/form-data; boundary=AAA';
  const field = (disposition: string, value: string) =>
    `--AAA\r\nContent-Disposition: ${disposition}\r\n\r\n${value}\r\n`;
  const title = 'Content-Disposition: form-data; name="title"\r\n\r\nx';
  const method = 'Content-Disposition: form-data; name="_method"\r\n\r\ndelete';
  const plain = `--AAA\r\n${title}\r\n--AAA\r\n${method}\r\n--AAA--\r\n`;
  assert.deepEqual(methods(plain, type), ['DELETE']);
  const refused = (body: string, contentType: string) => {
    const found = read(body, contentType);
    assert.ok('refusal' in found, `${contentType}: ${JSON.stringify(body)}`);
    assert.equal(found.refusal.status, 403);
    assert.equal(found.refusal.layer, 'method');
    assert.match(
      found.refusal.reason,
      /^the multipart body is not plain enough to know which method/,
    );
  };
  // Rack finds a boundary anywhere after the type, PHP after the first `boundary`: both read
  // AAA from the first two. Both read an unquoted one up to `;` or `,`, spaces and all, and
  // Rack a quoted one too.
  for (const contentType of [
    'multipart/form-data, boundary=AAA',
    'multipart/form-data; xboundary=AAA',
    'multipart/form-data; boundary=AAA; boundary=BBB',
    'multipart/form-data; boundary =AAA',
    'multipart/form-data; boundary=AAA x',
    'multipart/form-data; boundary',
    'multipart/form-data; boundary=""',
    'multipart/form-data; boundary="AAA;x"',
    'multipart/form-data; boundary="A\\AA"',
  ])
    refused(plain, contentType);
  for (const body of [
    // PHP takes a bare LF as a line end.
    plain.replaceAll('\r\n', '\n'),
    `--AAA\r\nContent-Disposition: form-data; name="title"\n\r\n\r\nx\r\n--AAA--\r\n`,
    `--AAA\r\nContent-Disposition: form-data; name="title"\rX: y\r\n\r\nx\r\n--AAA--\r\n`,
    // Rack unescapes `\` in a quoted value, PHP reads `'` as a quote.
    field('form-data; name="_\\method"', 'delete'),
    field("form-data; name='_method'", 'delete'),
    field('form-data; name*="_method"', 'delete'),
    // Rack takes the first name, PHP the last; PHP reads `name=` in the disposition type.
    field('form-data; name="title"; name="_method"', 'delete'),
    field('name=_method', 'delete'),
    field('form-data; name=_method x', 'delete'),
    // PHP adds a line without `:`, or one that starts with a space, to the header before it.
    field('form-data; name="title"\r\n; name="_method"', 'delete'),
    field('form-data; name="title"\r\n name="_method"', 'delete'),
    // A part without headers: PHP and Rack read on past the next delimiter for them.
    `--AAA\r\n\r\ndelete\r\n--AAA--\r\n`,
    `--AAA\r\n--AAA\r\n${title}\r\n--AAA--\r\n`,
    // PHP ends a part at a delimiter after a bare LF and takes a line that starts with one for
    // one; older Rack ends it at a delimiter anywhere.
    `--AAA\r\n${title}\n--AAA\r\n${method}\r\n--AAA--\r\n`,
    `--AAA\r\n${title}\r\n--AAAX\n${method}\r\n--AAA--\r\n`,
    `--AAA\r\n${title}--AAA\r\n${method}\r\n--AAA--\r\n`,
    // Past the closing delimiter PHP reads on, and Rack looks for an opening one.
    `${plain}${field('form-data; name="_method"', 'delete')}`,
    `--AAA--\r\n${plain}`,
    `${plain}epilogue`,
  ])
    refused(body, type);
});

test('a plain multipart body names its method in a Content-Disposition or a Content-ID; real clients write plain ones', () => {
  const type = 'multipart/form-data; charset=utf-8; boundary="A B"';
  const part = (headers: string, value: string) => `--A B\r\n${headers}\r\n\r\n${value}\r\n`;
  // A preamble, no closing delimiter, the name's parameter in any case (PHP).
  assert.deepEqual(
    methods(`preamble\r\n${part('content-disposition: form-data;NAME=_method ', 'put')}`, type),
    ['PUT'],
  );
  // Rack names a part by its Content-ID without a Content-Disposition (or with one too long).
  const byId = `${part('Content-ID: _method', 'delete')}${part('Content-Disposition: form-data; name="a"\r\nContent-ID: _method', 'patch')}--A B--`;
  assert.deepEqual(methods(byId, type), ['DELETE', 'PATCH']);
  // curl -F, with a file; Google Drive's multipart/related upload, with Content-Type parts.
  const curlUpload = [
    '--------------------------d74496d66958873e\r\n',
    'Content-Disposition: form-data; name="title"\r\n\r\nx\r\n',
    '--------------------------d74496d66958873e\r\n',
    'Content-Disposition: form-data; name="file"; filename="a b.txt"\r\n',
    'Content-Type: text/plain\r\n\r\nline 1\r\n\r\nline 2 --\r\n',
    '--------------------------d74496d66958873e--\r\n',
  ].join('');
  assert.deepEqual(
    methods(curlUpload, 'multipart/form-data; boundary=------------------------d74496d66958873e'),
    [],
  );
  const drive = [
    '--foo_bar_baz\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{"name":"a.jpg"}\r\n',
    '--foo_bar_baz\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff\r\n--foo_bar_baz--',
  ].join('');
  assert.deepEqual(methods(drive, 'multipart/related; boundary=foo_bar_baz'), []);
  // Without any delimiter no framework finds a part.
  assert.deepEqual(methods('_method=delete', type), []);
});

test('a body is read for `_method` in each of its readings: as sent and decoded', () => {
  const type = 'application/json';
  const readings = [Buffer.from('{"_method":"DELETE"}'), Buffer.from('{"_method":"put"}')];
  const found = bodyMethodOverrides(readings, overridableBody('POST', type), type);
  assert.ok('methodOverrides' in found);
  assert.deepEqual(
    found.methodOverrides.map((o) => o.method),
    ['DELETE', 'PUT'],
  );
});
