/** The label of every route past the bound. */
export const OTHER_ROUTE = 'other'

/**
 * Bounds the `route` label of the metrics: routes are patterns already (`/post/:id`), and past `max` distinct ones
 * (an app that builds routes at run time) every new route is counted under `other`, so the series stay bounded.
 */
export class RouteLabels {
  readonly #max: number
  readonly #seen: Set<string>

  constructor (max: number) {
    this.#max = max
    this.#seen = new Set()
  }

  of (route: string): string {
    if (this.#seen.has(route)) return route
    if (this.#seen.size >= this.#max) return OTHER_ROUTE
    this.#seen.add(route)
    return route
  }
}
