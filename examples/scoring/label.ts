/** The scoring example's own step: labels a scored record (an async function, as a remote call would be). */
export default async (r: { score: number }): Promise<unknown> => ({
  ...r,
  label: r.score >= 90 ? 'block' : r.score >= 60 ? 'review' : 'allow',
});
