/**
 * Keeping a stateful resource's CloudFormation logical id when a refactoring moves it into a
 * child construct. A new logical id means CloudFormation creates a new resource and deletes the
 * old one: a new table, IP sets emptied, a web ACL association dropped, the NACL cleanup run.
 * See https://docs.aws.amazon.com/cdk/v2/guide/identifiers.html#identifiers-logical-ids.
 */
import { createHash } from 'node:crypto';
import { Stack, type CfnElement } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * The logical id aws-cdk-lib allocates to an element at `<formerScope's path>/<ids…>` in a
 * top-level stack: the path's ids below the stack ("Default" dropped), joined without
 * separators (repeats and "Resource" left out, 240 characters at most), then the first 8 hex
 * digits of the MD5 of the path, upper case; a single id is used as it is.
 */
export function logicalIdAt(formerScope: IConstruct, ...ids: string[]): string {
  const stack = Stack.of(formerScope);
  const scopes = formerScope.node.scopes;
  const components = [...scopes.slice(scopes.indexOf(stack) + 1).map((s) => s.node.id), ...ids].filter((c) => c !== 'Default');
  const alnum = (s: string): string => s.replace(/[^A-Za-z0-9]/g, '');
  if (components.length === 1) return alnum(components[0]!);
  const hash = createHash('md5').update(components.join('/')).digest('hex').slice(0, 8).toUpperCase();
  const human: string[] = [];
  for (const c of components) if (human.length === 0 || !human[human.length - 1]!.endsWith(c)) human.push(c);
  return (
    human
      .filter((c) => c !== 'Resource')
      .map(alnum)
      .join('')
      .slice(0, 240) + hash
  );
}

/** Gives `element` the logical id it had at `<formerScope>/<ids…>`, so a move does not replace it. */
export function keepLogicalId(element: CfnElement, formerScope: IConstruct, ...ids: string[]): void {
  element.overrideLogicalId(logicalIdAt(formerScope, ...ids));
}
