// `_method` in POST bodies: which bodies frameworks read it from, and what they find there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bodyMethodOverrides, overridableBody } from '../../src/engine/body-method.js';

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
    // Without a boundary Rack reads a multipart type as a form.
    ['POST', 'multipart/related', ['form']],
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

test('the methods a body asks for, in each kind of body', () => {
  const methods = (body: string, type: string) => {
    const kinds = overridableBody('POST', type);
    assert.ok(kinds.length > 0, type);
    return bodyMethodOverrides(Buffer.from(body), kinds, type).map((o) => o.method);
  };
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
    '--b0und--\r\n',
  ].join('');
  assert.deepEqual(methods(multipart, 'multipart/form-data; boundary="b0und"'), [
    'DELETE',
    'PUT',
    'PATCH',
    'OPTIONS',
  ]);
  assert.deepEqual(methods(multipart, 'multipart/form-data; boundary=b0und'), [
    'DELETE',
    'PUT',
    'PATCH',
    'OPTIONS',
  ]);
  assert.deepEqual(methods(multipart, 'multipart/form-data'), []);
});
