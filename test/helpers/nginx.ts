import { which } from './balancer.js';

/** nginx in front of the balancer: the launcher is shared with bench/reuse.ts. */
export { startNginx, type NginxOptions, type RunningNginx } from '../../bench/lib/nginx.js';

/** Why nginx tests cannot run here, or null (`.ci/run` installs nginx). */
export function nginxMissing(): string | null {
  return which('nginx') === null ? 'nginx is not installed (apt-get install nginx; .ci/run does it)' : null;
}
