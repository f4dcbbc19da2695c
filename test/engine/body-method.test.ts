// `_method` in POST bodies: which bodies frameworks read it from, and what they find there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bodyMethodOverrides, overridableBody } from '../../src/engine/body-method.js';

test('a POST with a form, multipart, JSON or no Content-Type may name its method; nothing else does', () => {
  const rows: [string, string | undefined, string | undefined][] = [
    ['POST', undefined, 'form'],
    ['POST', 'application/x-www-form-urlencoded; charset=UTF-8', 'form'],
    ['POST', 'Multipart/Form-Data; boundary=x', 'multipart'],
    ['POST', 'application/json', 'json'],
    ['POST', 'application/vnd.api+json; charset=utf-8', 'json'],
    ['POST', 'application/octet-stream', undefined],
    ['POST', 'text/plain', undefined],
    ['POST', 'application/jsonl', undefined],
    ['PUT', 'application/x-www-form-urlencoded', undefined],
    ['GET', undefined, undefined],
  ];
  for (const [method, type, kind] of rows)
    assert.equal(overridableBody(method, type), kind, `${method} ${type}`);
});

test('the methods a body asks for, in each kind of body', () => {
  const methods = (body: string, type: string) => {
    const kind = overridableBody('POST', type);
    assert.ok(kind !== undefined, type);
    return bodyMethodOverrides(Buffer.from(body), kind, type).map((o) => o.method);
  };
  const form = 'application/x-www-form-urlencoded';
  assert.deepEqual(methods('a=1&_method=delete&_method=put', form), ['DELETE', 'PUT']);
  assert.deepEqual(methods('a=1&%5Fmethod=patch', form), ['PATCH']);
  assert.deepEqual(methods('a=1&method=delete', form), []);
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
    '--b0und--\r\n',
  ].join('');
  assert.deepEqual(methods(multipart, 'multipart/form-data; boundary="b0und"'), [
    'DELETE',
    'PUT',
    'PATCH',
  ]);
  assert.deepEqual(methods(multipart, 'multipart/form-data; boundary=b0und'), [
    'DELETE',
    'PUT',
    'PATCH',
  ]);
  assert.deepEqual(methods(multipart, 'multipart/form-data'), []);
});
