// Roles and policies, written one way: a role only one service may assume, with one inline
// least-privilege policy; and the account/partition every ARN and confused-deputy condition needs.
import { DataAwsCallerIdentity } from '@cdktf/provider-aws/lib/data-aws-caller-identity';
import { DataAwsIamPolicyDocument, DataAwsIamPolicyDocumentStatement } from '@cdktf/provider-aws/lib/data-aws-iam-policy-document';
import { DataAwsPartition } from '@cdktf/provider-aws/lib/data-aws-partition';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import { Construct } from 'constructs';

export type Statement = DataAwsIamPolicyDocumentStatement;
export type Condition = NonNullable<Statement['condition']>;

/** A role that only `service` may assume, with one inline policy. */
export function serviceRole(scope: Construct, id: string, name: string, service: string, statements: Statement[], conditions?: Condition): IamRole {
  const trust = new DataAwsIamPolicyDocument(scope, `${id}-trust`, {
    statement: [{ effect: 'Allow', actions: ['sts:AssumeRole'], principals: [{ type: 'Service', identifiers: [service] }], condition: conditions }],
  });
  const role = new IamRole(scope, id, { name, assumeRolePolicy: trust.json, maxSessionDuration: 3600 });
  if (statements.length > 0) {
    const policy = new DataAwsIamPolicyDocument(scope, `${id}-policy-doc`, { statement: statements });
    new IamRolePolicy(scope, `${id}-policy`, { role: role.id, name: 'least-privilege', policy: policy.json });
  }
  return role;
}

/** The deploying account and partition of a stack (data sources `account` and `partition`). */
export class AccountScope {
  readonly accountId: string;
  readonly partition: string;
  /**
   * Confused-deputy guard for service trust policies: only this account's resources may assume the role
   * (https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html).
   */
  readonly sourceAccount: Condition;

  constructor(
    scope: Construct,
    readonly region: string,
  ) {
    this.accountId = new DataAwsCallerIdentity(scope, 'account').accountId;
    this.partition = new DataAwsPartition(scope, 'partition').partition;
    this.sourceAccount = [{ test: 'StringEquals', variable: 'aws:SourceAccount', values: [this.accountId] }];
  }

  /** `arn:<partition>:<service>:<region>:<account>:<resource>` */
  arn(service: string, resource: string): string {
    return `arn:${this.partition}:${service}:${this.region}:${this.accountId}:${resource}`;
  }
}
