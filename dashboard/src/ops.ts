// Watch operations: over the socket when it is connected (the server answers with live
// events), else over REST followed by a refetch of the list.

import * as api from './api';
import { emitCheckboxOperation, emitWatchOperation } from './socket';
import { store } from './store';
import { toast, toastError } from './toast';
import type { BulkOp } from './types';

export type RowOp = 'recheck' | 'pause' | 'mute';

/** Recheck, or toggle pause / mute, of one watch. */
export async function rowOperation(op: RowOp, uuid: string): Promise<void> {
  if (emitWatchOperation(op, uuid)) return;
  const row = store.rows.get(uuid);
  try {
    if (op === 'recheck') await api.watchOperation(uuid, { recheck: true });
    // The socket ops are toggles; over REST the direction comes from the row's state.
    else if (op === 'pause') await api.watchOperation(uuid, { paused: row?.paused ? 'unpaused' : 'paused' });
    else await api.watchOperation(uuid, { muted: row?.notification_muted ? 'unmuted' : 'muted' });
  } catch (err) {
    toastError(api.errorMessage(err));
  }
  await store.refresh().catch((err: unknown) => toastError(api.errorMessage(err)));
}

/** A bulk operation on the ticked watches (`extraData` = tag uuid for assign-tag). */
export async function bulkOperation(op: BulkOp, uuids: string[], extraData = ''): Promise<void> {
  if (uuids.length === 0) return;
  if (emitCheckboxOperation(op, uuids, extraData)) return;
  try {
    const res = await api.bulkOperation(op, uuids, extraData);
    toast(res?.message || 'Done', res?.type || 'success');
  } catch (err) {
    toastError(api.errorMessage(err));
  }
  await store.refresh().catch((err: unknown) => toastError(api.errorMessage(err)));
}

/** Deletes one watch (after the caller confirmed). */
export async function deleteWatch(uuid: string): Promise<boolean> {
  try {
    await api.deleteWatch(uuid);
  } catch (err) {
    toastError(api.errorMessage(err));
    return false;
  }
  store.remove(uuid);
  toast('Watch deleted', 'success');
  return true;
}

/**
 * Resolves a tag title to its uuid, creating the tag when none has that title (ignoring case,
 * as the server does).
 */
export async function tagUuidForTitle(title: string): Promise<string> {
  const wanted = title.trim().toLowerCase();
  const known = store.tags.find((t) => t.title.trim().toLowerCase() === wanted);
  if (known) return known.uuid;
  const created = await api.createTag(title.trim());
  return created.uuid;
}
