/** Test module for the `module-fanout` golden pipeline. */
interface Row {
  id: number;
  name: string;
}

/** Keeps, drops (id 2), splits (id 3) or rejects (id 4) a record. */
export default function enrich(r: Row): Row | Row[] | undefined {
  if (r.id === 2) return undefined;
  if (r.id === 3)
    return [
      { ...r, name: `${r.name}1` },
      { ...r, name: `${r.name}2` },
    ];
  if (r.id === 4) throw new Error('id 4 is not welcome');
  return { ...r, name: r.name.toUpperCase() };
}

/** Turns a record into a line of text. */
export function stamp(r: Row): string {
  return `${r.id}:${r.name}`;
}
