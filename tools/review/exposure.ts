// Network exposure of a synthesized app: ingress and open egress rules, endpoints, gateways, public
// IPs, public buckets, and the tasks the state machine starts, each marked public or private.
import { allResources, type Block } from '../tf-json';
import type { SecurityModel } from './model';
import { asArray, statementsOf } from './policy';

export interface ExposureItem {
  readonly stack: string;
  readonly kind: string;
  readonly detail: string;
  /** Reachable from or to the internet. */
  readonly public: boolean;
}

const ANYWHERE = new Set(['0.0.0.0/0', '::/0']);

/** Ingress rules, open egress, endpoints and anything public, per stack. */
export function networkExposure(model: SecurityModel): ExposureItem[] {
  const out: ExposureItem[] = [];
  const r = model.resolver;
  const groupName = (stack: string, ref: string) => {
    const m = /\$\{aws_security_group\.([\w-]+)\.id\}/.exec(ref);
    if (m) return model.app.stacks[stack].resource?.aws_security_group?.[m[1]]?.name ?? m[1];
    const remote = /cross-stack-output-aws_security_group([\w-]+?)id\}$/.exec(ref);
    return remote ? remote[1] : r.text(stack, ref, false);
  };
  for (const [stack, type, logical, b] of allResources(model.app)) {
    const text = (v: unknown) => (typeof v === 'string' ? r.text(stack, v, false) : JSON.stringify(v));
    switch (type) {
      case 'aws_vpc_security_group_ingress_rule':
      case 'aws_vpc_security_group_egress_rule': {
        const source =
          b.cidr_ipv4 ??
          b.cidr_ipv6 ??
          (b.prefix_list_id
            ? `prefix list ${groupName(stack, b.prefix_list_id)}`
            : b.referenced_security_group_id
              ? `sg ${groupName(stack, b.referenced_security_group_id)}`
              : '?');
        const dir = type.endsWith('ingress_rule') ? 'ingress' : 'egress';
        const ports = b.ip_protocol === '-1' ? 'all traffic' : `${b.ip_protocol}/${b.from_port === b.to_port ? b.from_port : `${b.from_port}-${b.to_port}`}`;
        out.push({
          stack,
          kind: dir,
          detail: `${groupName(stack, b.security_group_id)}: ${ports} ${dir === 'ingress' ? 'from' : 'to'} ${text(source)} (${b.description ?? logical})`,
          public: ANYWHERE.has(source),
        });
        break;
      }
      case 'aws_security_group_rule':
        out.push({
          stack,
          kind: b.type,
          detail: `${groupName(stack, b.security_group_id)}: ${b.protocol}/${b.from_port}-${b.to_port} ${asArray(b.cidr_blocks).join(',')}`,
          public: asArray<string>(b.cidr_blocks).some((c) => ANYWHERE.has(c)),
        });
        break;
      case 'aws_security_group':
        for (const dir of ['ingress', 'egress'] as const) {
          for (const rule of asArray<Block>(b[dir])) {
            out.push({
              stack,
              kind: dir,
              detail: `${b.name ?? logical} (inline): ${rule.protocol}/${rule.from_port}-${rule.to_port} ${asArray(rule.cidr_blocks).join(',')}`,
              public: asArray<string>(rule.cidr_blocks).some((c) => ANYWHERE.has(c)),
            });
          }
        }
        break;
      case 'aws_default_security_group': {
        const rules = asArray(b.ingress).length + asArray(b.egress).length;
        out.push({
          stack,
          kind: 'default-sg',
          detail: rules === 0 ? 'default security group: no rules (closed)' : `default security group: ${rules} rules`,
          public: false,
        });
        break;
      }
      case 'aws_vpc_endpoint':
        out.push({
          stack,
          kind: 'endpoint',
          detail: `${b.vpc_endpoint_type ?? 'Gateway'} ${text(b.service_name)}${b.private_dns_enabled ? ' (private DNS)' : ''}`,
          public: false,
        });
        break;
      case 'aws_transfer_server':
        out.push({
          stack,
          kind: 'transfer',
          detail: `Transfer ${asArray(b.protocols).join('/')} endpoint ${b.endpoint_type ?? 'PUBLIC'}${asArray(b.endpoint_details?.address_allocation_ids).length ? ' with Elastic IPs' : ''}, policy ${b.security_policy_name ?? 'default'}`,
          public: (b.endpoint_type ?? 'PUBLIC') === 'PUBLIC' || asArray(b.endpoint_details?.address_allocation_ids).length > 0,
        });
        break;
      case 'aws_internet_gateway':
        out.push({ stack, kind: 'internet', detail: `internet gateway ${logical}`, public: true });
        break;
      case 'aws_nat_gateway':
        out.push({ stack, kind: 'internet', detail: `NAT gateway ${logical} (egress only)`, public: true });
        break;
      case 'aws_eip':
        out.push({ stack, kind: 'internet', detail: `Elastic IP ${logical}`, public: true });
        break;
      case 'aws_subnet':
        if (b.map_public_ip_on_launch) out.push({ stack, kind: 'internet', detail: `subnet ${logical} maps public IPs on launch`, public: true });
        break;
      case 'aws_route':
        if (ANYWHERE.has(b.destination_cidr_block))
          out.push({
            stack,
            kind: 'route',
            detail: `default route in ${logical} via ${b.gateway_id ? 'internet gateway' : b.nat_gateway_id ? 'NAT gateway' : 'other'}`,
            public: Boolean(b.gateway_id),
          });
        break;
      case 'aws_s3_bucket_public_access_block': {
        const all = ['block_public_acls', 'block_public_policy', 'ignore_public_acls', 'restrict_public_buckets'].every((k) => b[k] === true);
        if (!all) out.push({ stack, kind: 's3', detail: `bucket ${text(b.bucket)} does not block all public access`, public: true });
        break;
      }
      default:
        break;
    }
  }
  // Tasks started by the state machine: public IPs?
  for (const [stack, type, , b] of allResources(model.app)) {
    if (type !== 'aws_sfn_state_machine' || typeof b.definition !== 'string') continue;
    const assigns = [...b.definition.matchAll(/"AssignPublicIp":"(\w+)"/g)].map((m) => m[1]);
    if (assigns.length)
      out.push({
        stack,
        kind: 'tasks',
        detail: `state machine starts tasks with AssignPublicIp ${[...new Set(assigns)].join('/')}`,
        public: assigns.some((x) => x !== 'DISABLED'),
      });
  }
  for (const b of model.buckets) {
    for (const st of statementsOf(b.policy ?? { Version: '', Statement: [] })) {
      if (st.Effect === 'Allow' && (st.Principal === '*' || JSON.stringify(st.Principal ?? '').includes('"*"'))) {
        out.push({ stack: b.stack, kind: 's3', detail: `bucket policy of ${b.name} allows any principal`, public: true });
      }
    }
  }
  return out;
}
