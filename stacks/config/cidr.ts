// IPv4 CIDR arithmetic: parsing and checking blocks, Terraform's cidrsubnet(), and how many task
// addresses a subnet of the VPC leaves (the network stack lays its subnets out with these).

/** How the config names the SFTP source (only the Transfer server takes an address in the VPC). */
export type SftpSourceKind = 'transfer' | 'external';

/** Parses `a.b.c.d/n` into a 32-bit network number and prefix length; undefined if malformed. */
export function parseCidr(cidr: string): { network: number; prefix: number } | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(cidr);
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o) => o > 255) || prefix > 32) return undefined;
  const network = ((octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]) >>> 0;
  return { network, prefix };
}

export function checkCidr(cidr: string, minPrefix: number, maxPrefix: number): string | undefined {
  const parsed = parseCidr(cidr);
  if (!parsed) return `"${cidr}" is not an IPv4 CIDR block like 10.0.0.0/16`;
  if (parsed.prefix < minPrefix || parsed.prefix > maxPrefix) return `"${cidr}" must have a prefix length from /${minPrefix} to /${maxPrefix}`;
  const hostBits = 32 - parsed.prefix;
  const hostMask = hostBits === 32 ? 0xffffffff : 2 ** hostBits - 1;
  if ((parsed.network & hostMask) !== 0)
    return `"${cidr}" has host bits set (the network address is ${formatIp(parsed.network & (~hostMask >>> 0))}/${parsed.prefix})`;
  return undefined;
}

function formatIp(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

/** The `index`-th subnet of `cidr` with `newBits` more prefix bits (what Terraform's cidrsubnet does). */
export function cidrSubnet(cidr: string, newBits: number, index: number): string {
  const parsed = parseCidr(cidr);
  if (!parsed) throw new Error(`cidrSubnet: "${cidr}" is not an IPv4 CIDR`);
  const prefix = parsed.prefix + newBits;
  if (prefix > 32 || index < 0 || index >= 2 ** newBits) throw new Error(`cidrSubnet: cannot take subnet ${index} of ${cidr} with ${newBits} new bits`);
  const network = (parsed.network + index * 2 ** (32 - prefix)) >>> 0;
  return `${formatIp(network)}/${prefix}`;
}

// ---- VPC address arithmetic (the network stack lays subnets out with these) ----

/**
 * Interface endpoints, one per AWS API called from inside the VPC: ECR api+dkr (image pulls), CloudWatch
 * Logs (awslogs) and Secrets Manager (the injected SFTP key). S3 has a gateway endpoint, which takes no
 * address. No task calls STS (task credentials come from the ECS credentials endpoint) or Step Functions.
 */
export const INTERFACE_ENDPOINT_SERVICES = ['ecr.api', 'ecr.dkr', 'logs', 'secretsmanager'] as const;

/** Subnets are /(vpc+4): private ones take indexes 0..5, public ones 8..13. */
export const SUBNET_NEW_BITS = 4;

/**
 * Addresses per private subnet left for Fargate tasks: AWS reserves the first four and the last address
 * of every subnet (https://docs.aws.amazon.com/vpc/latest/userguide/subnet-sizing.html); each interface
 * endpoint puts one network interface in each of its subnets
 * (https://docs.aws.amazon.com/vpc/latest/privatelink/create-interface-endpoint.html), and so does the
 * Transfer server's VPC endpoint; each awsvpc task takes one more
 * (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-task-networking.html).
 */
export function taskAddressCapacity(vpcCidr: string, sftpKind: SftpSourceKind): { subnetPrefix: number; perSubnet: number; explain: string } {
  const parsed = parseCidr(vpcCidr);
  if (!parsed) throw new Error(`taskAddressCapacity: "${vpcCidr}" is not an IPv4 CIDR`);
  const subnetPrefix = parsed.prefix + SUBNET_NEW_BITS;
  const size = 2 ** (32 - subnetPrefix);
  const endpoints = INTERFACE_ENDPOINT_SERVICES.length;
  const transfer = sftpKind === 'transfer' ? 1 : 0;
  const explain = `${size} - 5 reserved by AWS - ${endpoints} interface endpoints${transfer ? ' - 1 Transfer endpoint' : ''}`;
  return { subnetPrefix, perSubnet: size - 5 - endpoints - transfer, explain };
}
