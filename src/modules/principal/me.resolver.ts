import { Ctx, Field, ObjectType, Query, Resolver } from 'type-graphql';
import type { Context } from '../../graphql/context.js';

@ObjectType({ simpleResolvers: true, description: 'The authenticated caller.' })
export class Me {
  @Field(() => String)
  id!: string;

  @Field(() => String)
  displayName!: string;

  @Field(() => [String])
  roles!: string[];

  @Field(() => String, { nullable: true })
  department!: string | null;

  @Field(() => String, { nullable: true })
  region!: string | null;

  @Field(() => String, { description: 'sha-256 of the policy bundle that decided this request.' })
  policyVersion!: string;
}

@Resolver()
export class MeResolver {
  @Query(() => Me)
  me(@Ctx() ctx: Context): Me {
    const p = ctx.principal;
    return {
      id: p.id,
      displayName: p.displayName,
      roles: p.roles,
      department: p.department,
      region: p.region,
      policyVersion: ctx.authz.bundle.version,
    };
  }
}
