// Error codes of the uploads feature.
import { AppError, validationFailed } from '../infra/errors.js'

/** 5242880 → "5 MB" (binary megabytes, as people say them). */
export function megabytes(bytes: number): string {
  const mb = bytes / 1_048_576
  return `${Number.isInteger(mb) ? mb : mb.toFixed(1)} MB`
}

export const uploadNotFound = () => new AppError(404, 'UPLOAD_NOT_FOUND', 'No such file among this session’s uploads.')

export const notPdf = () => new AppError(415, 'UNSUPPORTED_FILE_TYPE', 'PDF files only: this file is not a PDF (judged by its content, not its name).')

export const tooLarge = (maxBytes: number) =>
  new AppError(413, 'FILE_TOO_LARGE', `The file is larger than ${megabytes(maxBytes)}, the largest upload allowed.`, { maxBytes })

export const malformedMultipart = (why: string) => validationFailed(`body is not well-formed multipart/form-data (${why}); send the PDF in the field \`file\``)
export const notMultipart = () => validationFailed('body must be multipart/form-data with the PDF in the field `file`')
export const fileMissing = () => validationFailed('body.file is required: send the PDF in the multipart field `file`')
export const notTheFileField = (field: string) => validationFailed(`body.${field} is not an accepted field: send the PDF in the field \`file\``)
export const fileUnnamed = () => validationFailed('body.file has no file name')
