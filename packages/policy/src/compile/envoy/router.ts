/** The router: the terminal filter of every HTTP listener. */
import type { HttpFilterBuilder } from './ir.ts';

/** The router builder. */
export const router: HttpFilterBuilder<'envoy.filters.http.router'> = {
  name: 'envoy.filters.http.router',
  filter: () => ({
    name: 'envoy.filters.http.router',
    typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
  }),
};
