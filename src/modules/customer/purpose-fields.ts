/**
 * Customer fields that take a `purpose` argument: declared in CustomerResolver
 * (arguments and descriptions for the schema), resolved at run time straight
 * from the rendered cells (resolveCellsDirectly). Kept apart from the resolver
 * so the server can name them without loading decorated classes.
 */
export const customerPurposeFields = ['name', 'phone', 'email', 'address', 'idNumber', 'birthDate'] as const;
