/**
 * Compile-time check that what a compiler emits exists upstream: `NoUnknownFields<Ours, Theirs>` is
 * `true` when every field of `Ours` (recursively) is a field of `Theirs`, and otherwise names the
 * unknown fields, so assigning `true` to it fails `tsc` with the field in the message.
 */

/** The fields of A (recursively) that B does not have, as a union of messages; never when none. */
type UnknownFields<A, B> = 0 extends 1 & B
  ? never // `any` upstream accepts anything.
  : A extends readonly (infer E)[]
    ? NonNullable<B> extends readonly (infer F)[]
      ? UnknownFields<E, F>
      : 'a list where upstream has none'
    : A extends object
      ? {
          [K in keyof A]-?: K extends keyof NonNullable<B>
            ? UnknownFields<NonNullable<A[K]>, NonNullable<B>[K]>
            : `unknown field: ${K & string}`;
        }[keyof A]
      : never;

/** `true` when every field of A exists in B; otherwise the messages of {@link UnknownFields}. */
export type NoUnknownFields<A, B> = [UnknownFields<A, B>] extends [never]
  ? true
  : UnknownFields<A, B>;
