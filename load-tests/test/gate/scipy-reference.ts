/**
 * Reference values of scipy.stats.mannwhitneyu and scipy.stats.norm.sf, for the gate's unit tests.
 * Computed once with scipy 1.17.1 and numpy 2.4.6 (Python 3.11, in a throwaway venv:
 * `python3 -m venv /tmp/v && /tmp/v/bin/pip install scipy numpy`) by the script below, and pasted
 * here. `p` keys are `<alternative>/<method>`; `-nocc` is `use_continuity=False`. `hl` is
 * numpy's median of every b − a, `cliff` is (#(b > a) − #(b < a)) / (n1·n2). The `tied` case
 * without continuity correction is left out: scipy returns NaN there (0/0), the gate returns 1.
 *
 * ```python
 * import json, numpy as np, scipy
 * from scipy.stats import mannwhitneyu, norm
 * cases = {
 *  "shier": ([19,22,16,29,24],[20,11,17,12]),
 *  "small": ([1.1,2.3,3.7,4.2,5.9],[2.8,4.9,6.1,7.3,8.8,9.4]),
 *  "ties": ([1.0,1.5,1.5,2.0,2.0,2.0,3.0,3.5,4.0,4.0],[1.5,2.0,2.5,3.0,3.0,3.5,4.0,4.5,5.0,5.0,5.5,6.0]),
 *  "twenty": ([0.41,0.52,0.38,0.61,0.47,0.55,0.43,0.39,0.58,0.50,0.44,0.62,0.36,0.49,0.53,0.57,0.42,0.46,0.60,0.40],
 *             [0.48,0.66,0.51,0.70,0.59,0.63,0.45,0.54,0.72,0.56,0.64,0.68,0.37,0.65,0.69,0.71,0.67,0.74,0.62,0.61]),
 *  "separated10": (list(range(1,11)), list(range(11,21))),
 *  "separated8": ([1,2,3,4,5,6,7,8],[9,10,11,12,13,14,15,16]),
 *  "tied": ([2,2,2,2,2,2,2,2,2],[2,2,2,2,2,2,2,2,2,2]),
 *  "unbalanced": ([5.5,7.1,9.2],[1.0,1.2,1.9,2.4,2.6,3.1,3.3,3.8,4.0,4.4,4.7,5.0,5.2,5.8,6.3,6.6,7.4,7.9,8.3,8.8,9.6,10.1,10.9,11.3,12.0,12.2,13.5,14.1,14.4,15.0]),
 * }
 * out = {"scipy": scipy.__version__, "numpy": np.__version__, "cases": {}, "normSf": {}}
 * for name,(x,y) in cases.items():
 *     r = {}
 *     for alt in ["two-sided","greater","less"]:
 *         for meth in ["auto","asymptotic","exact"]:
 *             if meth=="exact" and (len(set(x+y))<len(x+y)): continue
 *             res = mannwhitneyu(x,y,alternative=alt,method=meth)
 *             r[f"{alt}/{meth}"] = [float(res.statistic), float(res.pvalue)]
 *         res = mannwhitneyu(x,y,alternative=alt,method="asymptotic",use_continuity=False)
 *         r[f"{alt}/asymptotic-nocc"] = [float(res.statistic), float(res.pvalue)]
 *     # Hodges-Lehmann shift of y relative to x, Cliff's delta of y vs x
 *     d = np.subtract.outer(np.array(y,float), np.array(x,float))
 *     r["hl"] = float(np.median(d))
 *     r["cliff"] = float((np.sum(d>0)-np.sum(d<0))/d.size)
 *     out["cases"][name]=r
 * for z in [-3,-1,0,0.5,1.0,1.959963984540054,2.5,3,4,5,8,10,20,30]:
 *     out["normSf"][repr(z)] = float(norm.sf(z))
 * print(json.dumps(out, indent=1))
 * ```
 */

/** One pair of samples and scipy's outcomes for it. */
export interface ScipyCase {
  a: number[];
  b: number[];
  /** `<alternative>/<method>` → [U of a, p]. */
  p: Record<string, [number, number]>;
  hl: number;
  cliff: number;
}

/** scipy.stats.mannwhitneyu(a, b, alternative=..., method=...) per case. */
export const scipyCases: Record<string, ScipyCase> = {
  shier: {
    a: [19, 22, 16, 29, 24],
    b: [20, 11, 17, 12],
    p: {
      'two-sided/auto': [17.0, 0.1111111111111111],
      'two-sided/asymptotic': [17.0, 0.11134688653314041],
      'two-sided/exact': [17.0, 0.1111111111111111],
      'two-sided/asymptotic-nocc': [17.0, 0.0864107329737],
      'greater/auto': [17.0, 0.05555555555555555],
      'greater/asymptotic': [17.0, 0.055673443266570206],
      'greater/exact': [17.0, 0.05555555555555555],
      'greater/asymptotic-nocc': [17.0, 0.04320536648685],
      'less/auto': [17.0, 0.9682539682539683],
      'less/asymptotic': [17.0, 0.9669037101389033],
      'less/exact': [17.0, 0.9682539682539683],
      'less/asymptotic-nocc': [17.0, 0.95679463351315],
    },
    hl: -7.0,
    cliff: -0.7,
  },
  small: {
    a: [1.1, 2.3, 3.7, 4.2, 5.9],
    b: [2.8, 4.9, 6.1, 7.3, 8.8, 9.4],
    p: {
      'two-sided/auto': [4.0, 0.05194805194805195],
      'two-sided/asymptotic': [4.0, 0.05523425371806383],
      'two-sided/exact': [4.0, 0.05194805194805195],
      'two-sided/asymptotic-nocc': [4.0, 0.044609718024939606],
      'greater/auto': [4.0, 0.9848484848484849],
      'greater/asymptotic': [4.0, 0.9821181167045111],
      'greater/exact': [4.0, 0.9848484848484849],
      'greater/asymptotic-nocc': [4.0, 0.9776951409875302],
      'less/auto': [4.0, 0.025974025974025976],
      'less/asymptotic': [4.0, 0.027617126859031914],
      'less/exact': [4.0, 0.025974025974025976],
      'less/asymptotic-nocc': [4.0, 0.022304859012469803],
    },
    hl: 3.3,
    cliff: 0.7333333333333333,
  },
  ties: {
    a: [1.0, 1.5, 1.5, 2.0, 2.0, 2.0, 3.0, 3.5, 4.0, 4.0],
    b: [1.5, 2.0, 2.5, 3.0, 3.0, 3.5, 4.0, 4.5, 5.0, 5.0, 5.5, 6.0],
    p: {
      'two-sided/auto': [28.0, 0.03650414510276858],
      'two-sided/asymptotic': [28.0, 0.03650414510276858],
      'two-sided/asymptotic-nocc': [28.0, 0.03363156259058807],
      'greater/auto': [28.0, 0.984522719069366],
      'greater/asymptotic': [28.0, 0.984522719069366],
      'greater/asymptotic-nocc': [28.0, 0.983184218704706],
      'less/auto': [28.0, 0.01825207255138429],
      'less/asymptotic': [28.0, 0.01825207255138429],
      'less/asymptotic-nocc': [28.0, 0.016815781295294034],
    },
    hl: 1.5,
    cliff: 0.5333333333333333,
  },
  twenty: {
    a: [
      0.41, 0.52, 0.38, 0.61, 0.47, 0.55, 0.43, 0.39, 0.58, 0.5, 0.44, 0.62, 0.36, 0.49, 0.53, 0.57,
      0.42, 0.46, 0.6, 0.4,
    ],
    b: [
      0.48, 0.66, 0.51, 0.7, 0.59, 0.63, 0.45, 0.54, 0.72, 0.56, 0.64, 0.68, 0.37, 0.65, 0.69, 0.71,
      0.67, 0.74, 0.62, 0.61,
    ],
    p: {
      'two-sided/auto': [65.0, 0.0002741472565175342],
      'two-sided/asymptotic': [65.0, 0.0002741472565175342],
      'two-sided/asymptotic-nocc': [65.0, 0.00026009985702021875],
      'greater/auto': [65.0, 0.9998766352395491],
      'greater/asymptotic': [65.0, 0.9998766352395491],
      'greater/asymptotic-nocc': [65.0, 0.9998699500714899],
      'less/auto': [65.0, 0.0001370736282587671],
      'less/asymptotic': [65.0, 0.0001370736282587671],
      'less/asymptotic-nocc': [65.0, 0.00013004992851010938],
    },
    hl: 0.13,
    cliff: 0.675,
  },
  separated10: {
    a: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    b: [11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
    p: {
      'two-sided/auto': [0.0, 0.00018267179110955002],
      'two-sided/asymptotic': [0.0, 0.00018267179110955002],
      'two-sided/exact': [0.0, 1.082508822446903e-5],
      'two-sided/asymptotic-nocc': [0.0, 0.00015705228423075119],
      'greater/auto': [0.0, 0.9999325785388228],
      'greater/asymptotic': [0.0, 0.9999325785388228],
      'greater/exact': [0.0, 1.0],
      'greater/asymptotic-nocc': [0.0, 0.9999214738578847],
      'less/auto': [0.0, 9.133589555477501e-5],
      'less/asymptotic': [0.0, 9.133589555477501e-5],
      'less/exact': [0.0, 5.412544112234515e-6],
      'less/asymptotic-nocc': [0.0, 7.852614211537559e-5],
    },
    hl: 10.0,
    cliff: 1.0,
  },
  separated8: {
    a: [1, 2, 3, 4, 5, 6, 7, 8],
    b: [9, 10, 11, 12, 13, 14, 15, 16],
    p: {
      'two-sided/auto': [0.0, 0.0001554001554001554],
      'two-sided/asymptotic': [0.0, 0.0009391056991171899],
      'two-sided/exact': [0.0, 0.0001554001554001554],
      'two-sided/asymptotic-nocc': [0.0, 0.0007775304469403846],
      'greater/auto': [0.0, 1.0],
      'greater/asymptotic': [0.0, 0.9996789556020677],
      'greater/exact': [0.0, 1.0],
      'greater/asymptotic-nocc': [0.0, 0.9996112347765298],
      'less/auto': [0.0, 7.77000777000777e-5],
      'less/asymptotic': [0.0, 0.00046955284955859495],
      'less/exact': [0.0, 7.77000777000777e-5],
      'less/asymptotic-nocc': [0.0, 0.0003887652234701923],
    },
    hl: 8.0,
    cliff: 1.0,
  },
  tied: {
    a: [2, 2, 2, 2, 2, 2, 2, 2, 2],
    b: [2, 2, 2, 2, 2, 2, 2, 2, 2, 2],
    p: {
      'two-sided/auto': [45.0, 1.0],
      'two-sided/asymptotic': [45.0, 1.0],
      'greater/auto': [45.0, 1.0],
      'greater/asymptotic': [45.0, 1.0],
      'less/auto': [45.0, 1.0],
      'less/asymptotic': [45.0, 1.0],
    },
    hl: 0.0,
    cliff: 0.0,
  },
  unbalanced: {
    a: [5.5, 7.1, 9.2],
    b: [
      1.0, 1.2, 1.9, 2.4, 2.6, 3.1, 3.3, 3.8, 4.0, 4.4, 4.7, 5.0, 5.2, 5.8, 6.3, 6.6, 7.4, 7.9, 8.3,
      8.8, 9.6, 10.1, 10.9, 11.3, 12.0, 12.2, 13.5, 14.1, 14.4, 15.0,
    ],
    p: {
      'two-sided/auto': [49.0, 0.8365102639296185],
      'two-sided/asymptotic': [49.0, 0.8265110013612353],
      'two-sided/exact': [49.0, 0.8365102639296185],
      'two-sided/asymptotic-nocc': [49.0, 0.8022086563685901],
      'greater/auto': [49.0, 0.41825513196480923],
      'greater/asymptotic': [49.0, 0.41325550068061767],
      'greater/exact': [49.0, 0.41825513196480923],
      'greater/asymptotic-nocc': [49.0, 0.40110432818429503],
      'less/auto': [49.0, 0.6046554252199415],
      'less/asymptotic': [49.0, 0.6109519214867658],
      'less/exact': [49.0, 0.6046554252199415],
      'less/asymptotic-nocc': [49.0, 0.5988956718157049],
    },
    hl: -0.6499999999999999,
    cliff: -0.08888888888888889,
  },
};

/** [z, scipy.stats.norm.sf(z)]. */
export const scipyNormSf: [number, number][] = [
  [-3, 0.9986501019683699],
  [-1, 0.8413447460685429],
  [0, 0.5],
  [0.5, 0.3085375387259869],
  [1.0, 0.15865525393145707],
  [1.959963984540054, 0.025],
  [2.5, 0.006209665325776132],
  [3, 0.0013498980316300933],
  [4, 3.167124183311986e-5],
  [5, 2.866515718791933e-7],
  [8, 6.22096057427174e-16],
  [10, 7.61985302416047e-24],
  [20, 2.7536241186061556e-89],
  [30, 4.906713927147908e-198],
];
