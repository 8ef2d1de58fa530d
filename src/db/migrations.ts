/**
 * Versioned schema migrations, applied in order at start-up (see migrate.ts). Never edit a
 * migration that has shipped: add a new one.
 *
 * The tables follow the platform's architecture document. deployment_routing is written by the
 * platform API and read here as untrusted input, so it carries few constraints: the router
 * validates every row itself and reports the bad ones.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const ROUTING_CHANGED_CHANNEL = 'deployment_routing_changed';

export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'routing, locations and nodes',
    sql: `
CREATE TABLE deployment_routing (
  id                 text PRIMARY KEY DEFAULT gen_random_uuid()::text,
  deployment_id      text NOT NULL,
  domain             text NOT NULL,
  service_name       text NOT NULL DEFAULT 'default',
  path_prefix        text NOT NULL DEFAULT '',
  target_port        integer NOT NULL,
  protocol           text NOT NULL DEFAULT 'http',
  ssl_enabled        boolean NOT NULL DEFAULT false,
  ssl_cert_resolver  text,
  load_balancer_algo text NOT NULL DEFAULT 'round-robin',
  middleware         jsonb,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deployment_routing_deployment_idx ON deployment_routing (deployment_id);
CREATE INDEX deployment_routing_domain_idx ON deployment_routing (domain);

CREATE TABLE deployment_locations (
  id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  deployment_id     text NOT NULL,
  node_id           text NOT NULL,
  node_hostname     text,
  node_ip           text,
  container_id      text NOT NULL UNIQUE,
  service_id        text,
  task_id           text,
  status            text NOT NULL,
  port              integer,
  domain            text,
  health_status     text,
  last_health_check timestamptz,
  cpu_usage         double precision,
  memory_usage      bigint,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deployment_locations_deployment_idx ON deployment_locations (deployment_id);
CREATE INDEX deployment_locations_node_idx ON deployment_locations (node_id);

CREATE TABLE node_metadata (
  id               text PRIMARY KEY,
  hostname         text NOT NULL,
  ip               text,
  role             text NOT NULL,
  availability     text NOT NULL,
  status           text NOT NULL,
  leader           boolean NOT NULL DEFAULT false,
  engine_version   text,
  total_cpu        double precision,
  total_memory     bigint,
  deployment_count integer NOT NULL DEFAULT 0,
  labels           jsonb NOT NULL DEFAULT '{}'::jsonb,
  last_heartbeat   timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION swarm_edge_touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END $$;

CREATE TRIGGER deployment_routing_touch BEFORE UPDATE ON deployment_routing
  FOR EACH ROW EXECUTE FUNCTION swarm_edge_touch_updated_at();

-- The router LISTENs on this channel and reloads the table, so a row change reaches Traefik
-- without waiting for a poll. The payload stays small (NOTIFY payloads are capped at 8000 bytes).
CREATE FUNCTION deployment_routing_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_LEVEL = 'STATEMENT' THEN
    PERFORM pg_notify('${ROUTING_CHANGED_CHANNEL}', json_build_object('op', TG_OP)::text);
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('${ROUTING_CHANGED_CHANNEL}', json_build_object('op', TG_OP, 'id', OLD.id)::text);
  ELSE
    PERFORM pg_notify('${ROUTING_CHANGED_CHANNEL}', json_build_object('op', TG_OP, 'id', NEW.id)::text);
  END IF;
  RETURN NULL;
END $$;

CREATE TRIGGER deployment_routing_changed AFTER INSERT OR UPDATE OR DELETE ON deployment_routing
  FOR EACH ROW EXECUTE FUNCTION deployment_routing_notify();
CREATE TRIGGER deployment_routing_truncated AFTER TRUNCATE ON deployment_routing
  FOR EACH STATEMENT EXECUTE FUNCTION deployment_routing_notify();
`,
  },
  {
    version: 2,
    name: 'node usage columns',
    // Written by the metrics role of each node, every minute (nodes/node-usage-writer.ts), with an
    // UPDATE of these columns only; the router's upsert of node_metadata never names them, so
    // neither undoes the other's writes.
    sql: `
ALTER TABLE node_metadata
  ADD COLUMN IF NOT EXISTS cpu_usage_percent        double precision,
  ADD COLUMN IF NOT EXISTS load1                    double precision,
  ADD COLUMN IF NOT EXISTS load5                    double precision,
  ADD COLUMN IF NOT EXISTS load15                   double precision,
  ADD COLUMN IF NOT EXISTS memory_used_bytes        bigint,
  ADD COLUMN IF NOT EXISTS memory_available_bytes   bigint,
  ADD COLUMN IF NOT EXISTS swap_used_bytes          bigint,
  ADD COLUMN IF NOT EXISTS disk_used_bytes          bigint,
  ADD COLUMN IF NOT EXISTS disk_total_bytes         bigint,
  ADD COLUMN IF NOT EXISTS disk_read_bytes_per_sec  double precision,
  ADD COLUMN IF NOT EXISTS disk_write_bytes_per_sec double precision,
  ADD COLUMN IF NOT EXISTS net_rx_bytes_per_sec     double precision,
  ADD COLUMN IF NOT EXISTS net_tx_bytes_per_sec     double precision,
  ADD COLUMN IF NOT EXISTS running_containers       integer,
  ADD COLUMN IF NOT EXISTS running_deployments      integer,
  ADD COLUMN IF NOT EXISTS usage_updated_at         timestamptz;
`,
  },
  {
    version: 3,
    name: 'routing weights',
    // Rows that share a host and path and all carry a weight split its traffic (a canary, or a
    // blue-green switch made in one transaction). double precision, not integer: the service
    // refuses NaN, infinities and fractions itself, with the field named, like any bad value.
    sql: `ALTER TABLE deployment_routing ADD COLUMN IF NOT EXISTS weight double precision;`,
  },
  {
    version: 4,
    name: 'routing entry points and TLS passthrough',
    // TCP and UDP routes: the Traefik entry point a row asks for (from the operator's allow-list),
    // and whether a TCP route passes TLS through to the deployment instead of terminating it.
    sql: `ALTER TABLE deployment_routing ADD COLUMN IF NOT EXISTS entry_point text;
ALTER TABLE deployment_routing ADD COLUMN IF NOT EXISTS tls_passthrough boolean;`,
  },
  {
    version: 5,
    name: 'routing mirrors',
    // A row with a mirror percentage is a shadow: it gets a copy of that share of the requests of
    // the route holding its host and path, and its answers are dropped. double precision, as
    // weight: the service refuses NaN, infinities and fractions itself, with the field named.
    sql: `ALTER TABLE deployment_routing ADD COLUMN IF NOT EXISTS mirror_percent double precision;`,
  },
];
